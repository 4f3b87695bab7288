"""Settlement at 100 / 1,000 (/ 10,000) parties: run time, DynamoDB requests and write units per party, S3
puts, Lambda invocations and Step Functions state transitions per party, through the REAL state machine
on the local stack, and the ratio of the per-party figures between sizes (target: linear, <= 1.2x per
10x growth).

How it works
  - The local stack (`python -m infra.local --tenant demo --port 0`, as tests/e2e/conftest.py starts
    it) runs in a subprocess with its state in a temporary folder; the bench waits for READY and stops
    it when the size is done (SIGTERM, then SIGKILL to its process group if it does not stop). One stack
    PER SIZE: moto answers a Query on an index by reading every item of the table, so on a shared
    stack each size's claims would also pay for the items of the sizes before it (~20% more at 10,000).
  - Per size N, on its own run date D (2030-01-01, 2030-02-01, ...): N - 2 redemption journals of
    business date D - 1 under T+1 (due D), each at its own merchant, one brand, 50/30/20 split: legs
    platform -p, brand:B -b, merchant:M +(p + b), so N parties (platform, the brand, N - 2 merchants)
    and 3 postings per journal, posted by `LedgerStore.post` itself (the journal, its postings and
    the balance updates, one transaction each, as clearing posts them: the Pay step reads the balances
    for the statements' opening balance). Seeding is not timed or counted.
  - One execution of the settlement state machine (`StartExecution {"settlement_date": D, "kind":
    "DAILY"}`: the daily run of D, cut at D's start; the postings' events are of D - 1), polled
    until done; anything but SUCCEEDED (or a closed run not covering N parties and 3 (N - 2) lines) is
    a bench failure: its error and cause are printed, exit 1. Run time = the execution's stopDate -
    startDate (moto's clock).
  - Requests are counted on the server side with moto's own request recorder (`/moto-api/recorder/`:
    every request moto serves is appended to a file, MOTO_RECORDER_FILEPATH, set in the stack's
    environment; recording only during the run). So what is counted is what the real run did,
    retries included, from the step functions' worker processes. To attribute a request to its step,
    each settlement step function is given AWS_SDK_UA_APP_ID=bench-<step> (UpdateFunctionConfiguration
    on the bench's own stack: botocore then appends `app/bench-<step>` to its User-Agent; the code is
    unchanged, and the warm-up below makes the new containers). From the same recording: S3 PUTs, and
    moto's Lambda Invoke requests per step function (= child state entries, retries included).
    Not infra/local: nothing there is changed or needed.
  - Write units are modelled (COST_MODEL, printed first): each item a write names is sized, a Put from
    the request itself, an Update from a sample of up to 25 items of its kind read back after the run.
  - State transitions: the parent execution's history (every *StateEntered, plus Lambda retries).
    moto runs the Distributed Map's children inline and keeps no child executions or histories
    (ListMapRuns gives counters only), so the children's transitions are counted from the Lambda
    Invoke requests of Pay / WriteStatements / MarkSettled in the recording: per batch 3 task states,
    one transition each (plus one per retry), as the definition has them.
  - Warm-up before each size (not timed): one run of a date with nothing due (open, await,
    claim x 8, plan, close warm), and 10 concurrent empty invocations each of pay / write_statements /
    mark_settled (the Distributed Map runs up to 10 batches at once): every size runs on warm
    containers, so the ratios compare the work, not the cold starts.

Time on this 2-CPU machine: ~0.11-0.13 s per party, nearly all of it moto serving ~16 DynamoDB requests
per party one at a time (a few ms each). So the default is 100 and 1,000 parties (~4 minutes in all,
inside `make bench`'s budget); 10,000 parties adds ~22 minutes (a run of ~1,250 s), so it is opt-in:

  BENCH_PARTIES=100,1000,10000 python bench/settlement.py

At 10,000 the claim phase is slowed by the local stack, not by settlement: moto's index Query reads the
whole table (~70,000 items: ~1.3 s a Query) and moto serves one DynamoDB request at a time, so 8 claims
at once wait longer than the step functions' 5 s client read timeout; botocore retries (moto still runs
the abandoned request), the step fails and Step Functions retries it with backoff. It gets through
(~40 claim retries, shown under "Lambda invocations"), and the retried requests and time are in the
figures; on a busy machine a shard can run out of retries: the run FAILS, the bench prints why (the
history's failures, the steps' exceptions from their logs), keeps that stack's folder, reports the sizes
before it and exits 1.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "layers" / "core" / "python")):
    if path not in sys.path:
        sys.path.insert(0, path)

SIZES = tuple(int(x) for x in os.environ.get("BENCH_PARTIES", "100,1000").split(",") if x.strip())
READY_TIMEOUT_S = 180
RUN_TIMEOUT_S = 3 * 3600
BRAND = "brand-bench"
SHARES = {"PLATFORM": 5000, "BRAND": 3000, "MERCHANT": 2000}
WARM_CONCURRENCY = 10  # infra/constructs/settlement.py BATCH_CONCURRENCY
SAMPLE_PER_KIND = 25
TARGET_PER_10X = 1.2
SFN_PER_TRANSITION = 0.025 / 1000  # Step Functions Standard, us-east-1 list price
TRANSACT_WCU_PER_KB = 2
STEPS = (
    "open",
    "await_clearing",
    "claim",
    "plan",
    "pay",
    "write_statements",
    "mark_settled",
    "close",
    "record_failure",
)
OPS = ("Query", "GetItem", "UpdateItem", "PutItem", "TransactWriteItems", "BatchWriteItem", "BatchGetItem")
# What docs/settlement.md measured before the Pay step posted settlement journals (issue #14): per party,
# DynamoDB requests and write units (table + index), printed beside today's figures.
BEFORE_JOURNALS = {100: (18.07, 30.2), 1000: (16.27, 30.0), 10000: (16.13, 30.0)}
# The items a transfer's journal writes in the transaction that records it SENT (coupons.data.ledger).
JOURNAL_KINDS = ("JOURNAL", "ENTRIES", "BALANCE")
BATCH_TASKS = ("pay", "write_statements", "mark_settled")

COST_MODEL = f"""\
Cost model. DynamoDB capacity is computed, not read from moto: a write in TransactWriteItems costs 2 write
units per item per 1 KB (rounded up) of the item, a plain PutItem / UpdateItem 1 unit per KB; a write
whose condition fails (a party met again in another shard, the simulated bank's fault check on a party
with no fault) is counted as if it had written, at least 1 unit: an upper bound. Sizes: a Put's item from
the request; an Update's item read back after the run (the largest of up to {SAMPLE_PER_KIND} of its kind: a posting,
line, party or run record only grows during a run). Item sizes follow DynamoDB's rules (attribute name
bytes + value bytes; numbers ~1 byte per 2 digits + 1; lists and maps 3 bytes + 1 per element). Index
writes (projection ALL): an item entering, leaving or changing in a global secondary index writes it once,
modelled at 1 unit per KB: a claim takes the posting out of gsi1 (UNSETTLED#{{shard}}), a carried amount
enters it, each write of the run item rewrites its gsi1 entry (SETTLEMENTRUNS). Reads are counted as
requests, not as units. The simulated bank's table is counted with the main table (a real channel's calls
would replace its 3 requests per transfer).
Step Functions Standard: ${SFN_PER_TRANSITION * 1000:.3f} per 1,000 state transitions (us-east-1 list price);
a transition is each state entered (a Map's iterations and the Distributed Map's child executions count
their own states) and each retry. Lambda, S3 and DynamoDB are priced in bench/redemption.py's terms and
not repeated here.
Timings: the local stack on this machine; moto serves DynamoDB one request at a time (a few ms each),
so run time is about requests x moto's service time, not real DynamoDB's partitions in parallel. moto's
recorder (one JSON line appended per request) is on during the runs: a few % of the time."""


# -- DynamoDB item sizes (as bench/clearing.py) -----------------------------------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    (kind, inner) = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    if kind == "B":
        return len(inner)
    raise ValueError(kind)


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def units(size: int, per: int) -> int:
    return max(1, math.ceil(size / per))


# -- the local stack --------------------------------------------------------------------------------


class LocalStack:
    """`python -m infra.local --tenant demo --port 0` in a subprocess, its state in `state`."""

    def __init__(self, state: Path):
        self.state = state
        self.recording = state / "moto-recording.jsonl"
        self.output = state / "local-stack.out"
        self.proc: subprocess.Popen | None = None
        self.endpoints: dict[str, Any] = {}

    def start(self) -> float:
        env = dict(os.environ)
        env["PYTHONPATH"] = f"{ROOT}/layers/core/python:{ROOT}"
        env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MOTO_PORT", "MOTO_ENABLE_RECORDING"):
            env.pop(name, None)
        env["MOTO_RECORDER_FILEPATH"] = str(self.recording)
        endpoints_file = self.state / "endpoints.json"
        command = [
            sys.executable,
            "-m",
            "infra.local",
            "--tenant",
            "demo",
            "--port",
            "0",
            "--endpoints-file",
            str(endpoints_file),
        ]
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        started = time.monotonic()
        while "\nREADY " not in "\n" + self.output.read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the local stack exited with {self.proc.returncode} before READY:\n"
                    + self.output.read_text(errors="replace")[-4000:]
                )
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise RuntimeError(
                    f"the local stack was not READY in {READY_TIMEOUT_S} s:\n"
                    + self.output.read_text(errors="replace")[-4000:]
                )
            time.sleep(0.2)
        self.endpoints = json.loads(endpoints_file.read_text())
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def client(self, service: str):
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoints["moto_endpoint"],
            region_name=self.endpoints["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=300),
        )

    def recorder(self, action: str) -> None:
        request = urllib.request.Request(
            f"{self.endpoints['moto_endpoint']}/moto-api/recorder/{action}", data=b"", method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def step_functions(self) -> dict[str, str]:
        """step (open, claim, ...) -> function name, from the endpoints file's settlementSteps* names."""
        found = {}
        for key, name in self.endpoints["functions"].items():
            if key.startswith("settlementSteps"):
                found[re.sub(r"(?<!^)([A-Z])", r"_\1", key[len("settlementSteps") :]).lower()] = name
        missing = set(STEPS) - set(found)
        if missing:
            raise RuntimeError(f"the stack has no settlement step functions for {sorted(missing)}")
        return found


def tag_step_functions(stack: LocalStack, functions: dict[str, str]) -> None:
    """AWS_SDK_UA_APP_ID=bench-<step> on each step function: its requests say which step made them."""
    lam = stack.client("lambda")
    for step, name in functions.items():
        config = lam.get_function_configuration(FunctionName=name)
        variables = dict((config.get("Environment") or {}).get("Variables") or {})
        variables["AWS_SDK_UA_APP_ID"] = f"bench-{step}"
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})


def warm_up(stack: LocalStack, functions: dict[str, str], machine: str) -> float:
    started = time.monotonic()
    sfn = stack.client("stepfunctions")
    execution = run_execution(sfn, machine, "bench-warm-up", "2029-12-01")
    if execution["status"] != "SUCCEEDED":
        fail_execution("warm-up (nothing due)", execution, sfn)
    lam = stack.client("lambda")
    payload = json.dumps({"run_id": "stl_20291201", "business_date": "2029-12-01", "parties": []}).encode()

    def invoke(name: str) -> None:
        answer = lam.invoke(FunctionName=name, Payload=payload)
        body = answer["Payload"].read()
        if answer.get("FunctionError"):
            raise RuntimeError(f"warm-up invocation of {name} failed: {body[:2000]!r}")

    with ThreadPoolExecutor(WARM_CONCURRENCY) as pool:
        for step in BATCH_TASKS:
            list(pool.map(invoke, [functions[step]] * WARM_CONCURRENCY))
    return time.monotonic() - started


# -- seeding ----------------------------------------------------------------------------------------


def seed(ddb, table: str, parties: int, run_date: str) -> tuple[int, float]:
    """N - 2 redemption journals due on run_date (business date the day before, T+1), posted by
    LedgerStore.post on the stack's moto. Returns (postings, seconds)."""
    from coupons.data.ledger import LedgerStore
    from coupons.domain.funding import Shares
    from coupons.domain.ledger import redemption_journal

    started = time.monotonic()
    business_date = (date.fromisoformat(run_date) - timedelta(days=1)).isoformat()
    ledger = LedgerStore(ddb, table)
    postings = 0
    shares = Shares(**SHARES)
    rule = {"rule_id": "fr_BENCH", "version": 1, "source": "default"}
    for i in range(parties - 2):
        redemption_id = f"rdm_BENCH{run_date.replace('-', '')}{i:07d}"
        merchant = f"m-{i:06d}"
        redemption = {
            "redemption_id": redemption_id,
            "discount": 500 + (i * 37) % 1500,  # merchant's leg >= 400: above the 100 minimum transfer
            "currency": "CNY",
            "brand_id": BRAND,
            "merchant_id": merchant,
        }
        journal = redemption_journal(redemption, shares, rule)
        postings += sum(1 for leg in journal.legs if leg.amount)
        ledger.post(
            journal,
            business_date=business_date,
            due_date=run_date,
            posted_at=f"{business_date}T04:00:00Z",
            extra={
                "redemption_id": redemption_id,
                "campaign_id": "cmp_BENCH",
                "brand_id": BRAND,
                "merchant_id": merchant,
                "store_id": f"{merchant}-s1",
                "order_id": f"o-{run_date}-{i}",
                "code": f"BENCH{i:010d}",
                "settlement_cycle": "T+1",
                "event_at": f"{business_date}T04:00:00Z",
            },
        )
    return postings, time.monotonic() - started


# -- the run ----------------------------------------------------------------------------------------


def run_execution(sfn, machine: str, name: str, run_date: str) -> dict[str, Any]:
    arn = sfn.start_execution(
        stateMachineArn=machine, name=name, input=json.dumps({"settlement_date": run_date, "kind": "DAILY"})
    )["executionArn"]
    started = time.monotonic()
    while True:
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        if time.monotonic() - started > RUN_TIMEOUT_S:
            sfn.stop_execution(executionArn=arn, error="Bench.Timeout", cause="the bench gave up")
            return {**execution, "status": "TIMED_OUT (bench)"}
        time.sleep(0.5)


class BenchFailed(Exception):
    pass


def fail_execution(
    what: str,
    execution: dict[str, Any],
    sfn=None,
    log_dir: Path | None = None,
    offsets: dict[str, int] | None = None,
) -> None:
    """Prints why the run failed (its error, the failed events of its history, the step functions'
    exceptions from their logs) and fails the bench."""
    print(f"\n{what}: the settlement execution ended {execution['status']}", flush=True)
    print(f"  error: {execution.get('error')}\n  cause: {(execution.get('cause') or '')[:3000]}", flush=True)
    if sfn is not None and execution.get("executionArn"):
        failed = Counter()
        for event in history(sfn, execution["executionArn"]):
            if event["type"].endswith(("Failed", "TimedOut", "Aborted")):
                details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
                failed[(event["type"], details.get("error"))] += 1
        for (kind, error), count in sorted(failed.items(), key=lambda kv: -kv[1]):
            print(f"  history: {count} x {kind} {error or ''}")
    if log_dir is not None:
        for step, problems in step_errors(log_dir, offsets or {}).items():
            for problem, count in problems.most_common(5):
                print(f"  {step}: {count} x {problem}")
    raise BenchFailed(what)


def step_errors(log_dir: Path, offsets: dict[str, int]) -> dict[str, Counter]:
    """Per step, since `offsets`: the exceptions its invocations raised (the last line of each traceback in
    its log) and the invocations that never reported (killed: a timeout)."""
    found: dict[str, Counter] = defaultdict(Counter)
    for path in sorted(log_dir.glob("SettlementSteps*.log")):
        name = re.match(r"SettlementSteps([A-Za-z]+?)Function", path.name)
        if not name:
            continue
        step = re.sub(r"(?<!^)([A-Z])", r"_\1", name.group(1)).lower()
        with open(path, "rb") as log:
            log.seek(offsets.get(path.name, 0))
            text = log.read().decode(errors="replace")
        in_traceback, last = False, None
        for line in text.splitlines():
            if line.startswith(("START RequestId", "END RequestId")):
                if last:  # an invocation's error: the last exception of its (chained) traceback
                    found[step][last] += 1
                in_traceback, last = False, None
            elif line.startswith("Traceback (most recent call last)"):
                in_traceback = True
            elif (
                in_traceback
                and line
                and not line.startswith((" ", "\t", "During handling", "The above exception"))
            ):
                last, in_traceback = line[:300], False
        if last:
            found[step][last] += 1
        unreported = text.count("START RequestId") - text.count("REPORT RequestId")
        if unreported > 0:
            found[step][f"started and never reported (killed: timeout, or still running) x{unreported}"] += 1
    return found


def history(sfn, arn: str) -> list[dict[str, Any]]:
    events, token = [], None
    while True:
        page = sfn.get_execution_history(
            executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def parent_transitions(events: list[dict[str, Any]]) -> tuple[int, int]:
    """(states entered, Lambda retries) of the parent execution (its Map's iterations included)."""
    types = Counter(e["type"] for e in events)
    entered = sum(n for t, n in types.items() if t.endswith("StateEntered"))
    lambda_tasks = types["TaskStateEntered"] - types["TaskScheduled"]  # TaskScheduled: the non-Lambda tasks
    return entered, max(0, types["LambdaFunctionScheduled"] - lambda_tasks)


# -- the recording ----------------------------------------------------------------------------------


def recorded_requests(path: Path):
    """moto's recording: JSON objects one after the other (a line each; concurrent requests may share a
    line, so the file is read as a stream of objects, not split on newlines)."""
    if not path.exists():
        return
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            at, end = 0, len(line)
            while True:
                while at < end and line[at] in " \r\n\t":
                    at += 1
                if at >= end:
                    break
                entry, at = decoder.raw_decode(line, at)
                yield entry


def _named(spec: dict[str, Any]) -> str:
    """An update's expression with its attribute-name placeholders (`#0`, as PynamoDB writes every name)
    replaced by the names, so that what it removes is read the same however the request was built."""
    names = spec.get("ExpressionAttributeNames", {})
    return re.sub(r"#\w+", lambda m: names.get(m.group(0), m.group(0)), spec.get("UpdateExpression", ""))


class Tally:
    """What one run's recording holds, by step and operation, and what its writes touch."""

    def __init__(self, tables: dict[str, str], functions: dict[str, str]):
        self.table_kind = {name: kind for kind, name in tables.items()}
        self.step_of_function = {name: step for step, name in functions.items()}
        self.ddb: Counter = Counter()  # (step, op)
        self.s3: Counter = Counter()  # (step, method)
        self.invocations: Counter = Counter()  # step
        self.other: Counter = Counter()  # (service, op) not made by a step function
        # writes: (kind, transactional, size from the request or None, index writes known, key, step)
        self.writes: list[tuple[str, bool, int | None, int | None, tuple, str | None]] = []
        self._step: str | None = None  # the step whose request is being read
        self.keys: dict[str, list[tuple[str, dict]]] = defaultdict(list)  # kind -> (table, key)
        self.unparsed = 0

    @staticmethod
    def _service(headers: dict[str, str]) -> str:
        match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
        return match.group(1) if match else "?"

    def add(self, entry: dict[str, Any]) -> None:
        headers = entry.get("headers") or {}
        agent = headers.get("User-Agent", "")
        match = re.search(r"app/bench-(\w+)", agent)
        step = match.group(1) if match else None
        service = self._service(headers)
        target = headers.get("X-Amz-Target", "")
        if service == "dynamodb" and target.startswith("DynamoDB_"):
            op = target.split(".", 1)[1]
            if step is None:
                self.other[("dynamodb", op)] += 1
                return
            self.ddb[(step, op)] += 1
            self._step = step
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode(errors="replace")
            try:
                self._writes(op, json.loads(body) if body else {})
            except (ValueError, KeyError, TypeError):
                self.unparsed += 1
            return
        if service == "s3":
            if step is None:
                self.other[("s3", entry.get("method"))] += 1
            else:
                self.s3[(step, entry.get("method"))] += 1
            return
        if service == "lambda":
            found = re.search(r"/functions/([^/]+)/invocations", entry.get("url", ""))
            name = found and urllib.parse.unquote(found.group(1)).split(":")[-1]
            if found and name in self.step_of_function:
                self.invocations[self.step_of_function[name]] += 1
                return
        self.other[(service, target.split(".")[-1] or entry.get("method"))] += 1

    def _kind(self, table: str, key: dict[str, Any]) -> str:
        pk = key["pk"]["S"]
        parts = pk.split("#")
        if self.table_kind.get(table) != "main":
            return f"bank {parts[0]}"
        if parts[0] == "SETTLEMENT" and len(parts) == 2:
            return "SETTLEMENT run"
        if parts[0] == "SETTLEMENT" and len(parts) >= 3:
            return f"SETTLEMENT {parts[2].lower()}"
        return parts[0]

    def _write(
        self, table: str, item_or_key: dict, *, put: bool, transactional: bool, expression: str = ""
    ) -> None:
        key = {"pk": item_or_key["pk"], "sk": item_or_key["sk"]}
        kind = self._kind(table, key)
        index = None
        if put:
            index = sum(1 for name in ("gsi1pk", "gsi2pk") if name in item_or_key)
        elif re.search(r"REMOVE[^=]*gsi1pk", expression):
            index = 1
        size = item_size(item_or_key) if put else None
        self.writes.append((kind, transactional, size, index, (table, key), self._step))
        if not put and len(self.keys[kind]) < 50_000:
            self.keys[kind].append((table, key))

    def _writes(self, op: str, body: dict[str, Any]) -> None:
        if op == "PutItem":
            self._write(body["TableName"], body["Item"], put=True, transactional=False)
        elif op == "UpdateItem":
            self._write(
                body["TableName"],
                body["Key"],
                put=False,
                transactional=False,
                expression=_named(body),
            )
        elif op == "TransactWriteItems":
            for action in body["TransactItems"]:
                kind, spec = next(iter(action.items()))
                if kind == "Put":
                    self._write(spec["TableName"], spec["Item"], put=True, transactional=True)
                else:
                    self._write(
                        spec["TableName"],
                        spec["Key"],
                        put=False,
                        transactional=True,
                        expression=_named(spec),
                    )
        elif op == "BatchWriteItem":
            for table, requests in body["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        self._write(table, request["PutRequest"]["Item"], put=True, transactional=False)

    # -- capacity --------------------------------------------------------------------------------

    def capacity(self, ddb) -> tuple[float, float, dict[str, tuple[int, int]], dict[str, float]]:
        """(table write units, index write units, per kind of item: (writes, largest size), and of the
        settlement journals (the Pay step's JOURNAL / ENTRIES / BALANCE writes): items and write units)."""
        sampled: dict[str, tuple[int, bool]] = {}  # kind -> (largest size, carries gsi1 keys)
        for kind, keys in self.keys.items():
            step = max(1, len(keys) // SAMPLE_PER_KIND)
            largest, indexed = 0, False
            for table, key in keys[::step][:SAMPLE_PER_KIND]:
                item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
                largest = max(largest, item_size(item))
                indexed = indexed or bool(item and "gsi1pk" in item)
            sampled[kind] = (largest, indexed)
        table_wcu = index_wcu = 0.0
        kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        journals = {"items": 0.0, "wcu": 0.0}
        for kind, transactional, size, index, _key, step in self.writes:
            if size is None:
                size, indexed = sampled.get(kind, (0, False))
                if index is None:
                    index = 1 if indexed else 0
            wcu = units(size, 1024) * (TRANSACT_WCU_PER_KB if transactional else 1) + (index or 0) * units(size, 1024)
            table_wcu += units(size, 1024) * (TRANSACT_WCU_PER_KB if transactional else 1)
            index_wcu += (index or 0) * units(size, 1024)
            kinds[kind][0] += 1
            kinds[kind][1] = max(kinds[kind][1], size)
            if step == "pay" and kind in JOURNAL_KINDS:
                journals["items"] += 1
                journals["wcu"] += wcu
        return table_wcu, index_wcu, {k: (n, size) for k, (n, size) in kinds.items()}, journals


def invocation_durations(log_dir: Path, offsets: dict[str, int]) -> dict[str, list[float]]:
    """Per step, the duration (ms) of each invocation since `offsets` (the REPORT lines of the function logs
    the local stack writes, .local-style: <logical id>.log)."""
    found: dict[str, list[float]] = defaultdict(list)
    for path in sorted(log_dir.glob("SettlementSteps*.log")):
        name = re.match(r"SettlementSteps([A-Za-z]+?)Function", path.name)
        if not name:
            continue
        step = re.sub(r"(?<!^)([A-Z])", r"_\1", name.group(1)).lower()
        with open(path, "rb") as log:
            log.seek(offsets.get(path.name, 0))
            for line in log.read().decode(errors="replace").splitlines():
                report = re.match(r"REPORT RequestId: \S+\tDuration: ([\d.]+) ms", line)
                if report:
                    found[step].append(float(report.group(1)))
    return found


def log_offsets(log_dir: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in log_dir.glob("SettlementSteps*.log")}


PHASES = ("Open", "AwaitClearing", "ClaimShards", "Plan", "SettleParties", "Close", "EmitCompleted")


def phase_seconds(events: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds from a state's first entry to its last exit, per state name (the history's timestamps)."""
    first, last = {}, {}
    for event in events:
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails")
        if not details:
            continue
        if event["type"].endswith("StateEntered"):
            first.setdefault(details["name"], event["timestamp"])
        elif event["type"].endswith("StateExited"):
            last[details["name"]] = event["timestamp"]
    return {name: (last[name] - first[name]).total_seconds() for name in first if name in last}


# -- one size ---------------------------------------------------------------------------------------


def measure(stack: LocalStack, functions: dict[str, str], parties: int, run_date: str) -> dict[str, Any]:
    ddb, sfn = stack.client("dynamodb"), stack.client("stepfunctions")
    main_table = stack.endpoints["tables"]["main"]
    machine = stack.endpoints["state_machines"]["settlement"]
    postings, seed_s = seed(ddb, main_table, parties, run_date)
    print(
        f"  {parties:,} parties: seeded {postings:,} postings due {run_date} in {seed_s:.1f} s (not timed);"
        " running the state machine ...",
        flush=True,
    )

    log_dir = Path(stack.endpoints["logs"])
    offsets = log_offsets(log_dir)
    stack.recorder("reset-recording")
    stack.recorder("start-recording")
    began = time.monotonic()
    try:
        execution = run_execution(sfn, machine, f"bench-{parties}-{run_date}", run_date)
    finally:
        stack.recorder("stop-recording")
    wall = time.monotonic() - began
    if execution["status"] != "SUCCEEDED":
        fail_execution(f"{parties:,} parties", execution, sfn, log_dir, offsets)
    output = json.loads(execution.get("output") or "{}")
    closed = output.get("closed") or {}
    lines = sum(t.get("lines", 0) for t in closed.get("totals", []))
    closed_parties = closed.get("parties", closed.get("party_count"))
    if closed_parties != parties or lines != postings:
        print(
            f"\n{parties:,} parties: the run closed with {closed_parties} parties and {lines} lines,"
            f" expected {parties} and {postings}: {json.dumps(closed)[:2000]}"
        )
        raise BenchFailed(f"{parties:,} parties: the closed run does not cover what was seeded")
    run_s = (execution["stopDate"] - execution["startDate"]).total_seconds()

    tally = Tally(stack.endpoints["tables"], functions)
    for entry in recorded_requests(stack.recording):
        tally.add(entry)
    table_wcu, index_wcu, kinds, journals = tally.capacity(ddb)
    events = history(sfn, execution["executionArn"])
    entered, retries = parent_transitions(events)
    batches = (output.get("plan") or {}).get("batches", 0)
    child = sum(tally.invocations[s] for s in BATCH_TASKS)
    result = {
        "parties": parties,
        "postings": postings,
        "batches": batches,
        "run_s": run_s,
        "wall_s": wall,
        "ddb": tally.ddb,
        "s3": tally.s3,
        "invocations": tally.invocations,
        "other": tally.other,
        "unparsed": tally.unparsed,
        "table_wcu": table_wcu,
        "index_wcu": index_wcu,
        "kinds": kinds,
        "journals": journals,
        "parent_transitions": entered + retries,
        "parent_retries": retries,
        "child_transitions": child,
        "child_expected": batches * len(BATCH_TASKS),
        "phases": phase_seconds(events),
        "durations": invocation_durations(log_dir, offsets),
        "errors": step_errors(log_dir, offsets),
    }
    requests = sum(tally.ddb.values())
    print(
        f"  {parties:,} parties: SUCCEEDED in {run_s:.1f} s, {requests:,} DynamoDB requests,"
        f" {batches} batches",
        flush=True,
    )
    return result


# -- report -----------------------------------------------------------------------------------------


def per_10x(ratio: float, growth: float) -> float:
    return ratio ** (1 / math.log10(growth)) if growth > 1 and ratio > 0 else float("nan")


def report(results: list[dict[str, Any]]) -> None:
    from coupons.data.ledger import SHARDS  # the claim Map's items

    print()
    print(
        f"{'parties':>8} {'postings':>8} {'batches':>7} {'run s':>7} {'ms/party':>8} {'DDB req':>9}"
        f" {'req/party':>9} {'WCU/party':>16} {'S3 PUT/party':>12} {'Lambda inv':>10}"
        f" {'transitions':>11} {'/party':>6} {'SFN $/1k parties':>16}"
    )
    for r in results:
        n = r["parties"]
        requests = sum(r["ddb"].values())
        puts = sum(v for (_, method), v in r["s3"].items() if method == "PUT")
        transitions = r["parent_transitions"] + r["child_transitions"]
        wcu = (
            f"{(r['table_wcu'] + r['index_wcu']) / n:.1f} ({r['table_wcu'] / n:.1f}+{r['index_wcu'] / n:.1f})"
        )
        print(
            f"{n:8,} {r['postings']:8,} {r['batches']:7} {r['run_s']:7.1f} {r['run_s'] / n * 1000:8.1f}"
            f" {requests:9,} {requests / n:9.2f} {wcu:>16} {puts / n:12.2f} {sum(r['invocations'].values()):10,}"
            f" {transitions:11,} {transitions / n:6.3f} {transitions / n * SFN_PER_TRANSITION * 1000:16.4f}"
        )
    print(
        "  WCU/party: total (table + index), modelled as in the cost model; run s: the execution's"
        " start to stop"
    )

    print()
    print("With settlement journals (each transfer posts its journal in the transaction recording it SENT), per")
    print("party, beside what docs/settlement.md measured before them:")
    print(f"  {'parties':>8} {'req/party':>10} {'before':>8} {'WCU/party':>10} {'before':>8}"
          f" {'journal items':>14} {'journal WCU':>12} {'balance BatchGet':>17}")  # fmt: skip
    for r in results:
        n = r["parties"]
        before = BEFORE_JOURNALS.get(n)
        batch_get = sum(v for (s, op), v in r["ddb"].items() if s == "pay" and op == "BatchGetItem")
        print(
            f"  {n:8,} {sum(r['ddb'].values()) / n:10.2f} {before[0] if before else '-':>8}"
            f" {(r['table_wcu'] + r['index_wcu']) / n:10.1f} {before[1] if before else '-':>8}"
            f" {r['journals']['items'] / n:14.2f} {r['journals']['wcu'] / n:12.1f} {batch_get / n:17.2f}"
        )
    print(
        "  journal items / WCU: the JOURNAL, ENTRIES and BALANCE writes of the Pay step (transactional: 2 units"
        " per KB);\n  balance BatchGet: the party's balance shards read at netting (the statement's opening balance)"
    )

    if len(results) > 1:
        print()
        print(f"Per-party growth between sizes (target: linear, <= {TARGET_PER_10X}x per 10x more parties):")
        for a, b in zip(results, results[1:], strict=False):
            growth = b["parties"] / a["parties"]
            figures = []
            for name, value in (
                ("time", lambda r: r["run_s"]),
                ("DynamoDB requests", lambda r: sum(r["ddb"].values())),
                ("write units", lambda r: r["table_wcu"] + r["index_wcu"]),
                ("transitions", lambda r: r["parent_transitions"] + r["child_transitions"]),
            ):
                ratio = (value(b) / b["parties"]) / (value(a) / a["parties"])
                scaled = per_10x(ratio, growth)
                verdict = "within" if scaled <= TARGET_PER_10X else "OVER"
                figures.append(f"{name} {ratio:.2f}x ({scaled:.2f}x per 10x, {verdict} target)")
            print(f"  {a['parties']:,} -> {b['parties']:,} ({growth:g}x): " + "; ".join(figures))
            added = b["parties"] - a["parties"]
            print(
                f"    each party added: {(b['run_s'] - a['run_s']) / added * 1000:.1f} ms,"
                f" {(sum(b['ddb'].values()) - sum(a['ddb'].values())) / added:.2f} DynamoDB requests,"
                f" {(b['table_wcu'] + b['index_wcu'] - a['table_wcu'] - a['index_wcu']) / added:.2f} write units"
                " (the fixed part of a run, spread over fewer parties, makes the per-party figures fall)"
            )

    header = "".join(f"{r['parties']:>10,}" for r in results)
    print()
    print(f"DynamoDB requests per party, by operation (all steps):{'':<4}{header}")
    ops = list(OPS) + sorted({op for r in results for (_, op) in r["ddb"]} - set(OPS))
    for op in ops:
        row = [sum(v for (_, o), v in r["ddb"].items() if o == op) / r["parties"] for r in results]
        print(f"  {op:55}" + "".join(f"{x:10.3f}" for x in row))
    print(
        f"  {'S3 PUT':55}"
        + "".join(
            f"{sum(v for (_, m), v in r['s3'].items() if m == 'PUT') / r['parties']:10.3f}" for r in results
        )
    )

    print()
    print(f"DynamoDB requests per party, by step:{'':<21}{header}")
    for step in STEPS:
        row = [sum(v for (s, _), v in r["ddb"].items() if s == step) / r["parties"] for r in results]
        if any(row):
            detail = ", ".join(
                f"{op} {v / results[-1]['parties']:.3f}"
                for (s, op), v in sorted(results[-1]["ddb"].items())
                if s == step
            )
            print(
                f"  {step:55}"
                + "".join(f"{x:10.3f}" for x in row)
                + f"   ({detail} at {results[-1]['parties']:,})"
            )

    print()
    print("Run time by phase, s (ms per party), from the execution's history:")
    print(f"  {'':20}" + "".join(f"{r['parties']:>18,}" for r in results))
    for name in PHASES:
        cells = []
        for r in results:
            seconds = r["phases"].get(name)
            cells.append("-" if seconds is None else f"{seconds:.1f} ({seconds / r['parties'] * 1000:.1f})")
        print(f"  {name:20}" + "".join(f"{c:>18}" for c in cells))

    print()
    print(
        "Batch invocations, median / largest duration (s): the batch holding the brand (first) or the platform"
    )
    print(
        "(last) nets, states and marks every journal's line of that account (10 batches at once, moto-bound):"
    )
    for r in results:
        cells = []
        for step in BATCH_TASKS:
            durations = sorted(r["durations"].get(step, []))
            if durations:
                median = durations[len(durations) // 2] / 1000
                cells.append(f"{step} {median:.1f} / {durations[-1] / 1000:.1f}")
        print(f"  {r['parties']:>7,} parties: " + ", ".join(cells))

    print()
    print(
        "Lambda invocations by step (expected: 1 each, claim 1 per shard, the batch steps 1 per batch); a retry"
    )
    print("re-runs a step from the start: its requests and time are in the figures above:")
    for r in results:
        expected = {step: 1 for step in STEPS if step != "record_failure"}
        expected["claim"] = SHARDS
        expected.update({step: r["batches"] for step in BATCH_TASKS})
        cells = []
        for step in STEPS:
            got = r["invocations"].get(step, 0)
            extra = got - expected.get(step, 0)
            cells.append(f"{step} {got}" + (f" (+{extra})" if extra > 0 else ""))
        print(f"  {r['parties']:>7,} parties: " + ", ".join(cells))
        for step, problems in r["errors"].items():
            for problem, count in problems.most_common(3):
                print(f"      {step}: {count} x {problem}")

    last = results[-1]
    print()
    print(f"Writes by item kind at {last['parties']:,} parties (per party; largest item):")
    for kind, (count, size) in sorted(last["kinds"].items(), key=lambda kv: -kv[1][0]):
        print(f"  {kind:30} {count / last['parties']:8.3f}   {size:5d} B")

    print()
    print("State transitions (Step Functions Standard):")
    for r in results:
        n = r["parties"]
        note = (
            ""
            if r["child_transitions"] == r["child_expected"]
            else (f" ({r['child_transitions'] - r['child_expected']} retries)")
        )
        print(
            f"  {n:>7,} parties: parent {r['parent_transitions']} (history: states entered"
            f" + {r['parent_retries']} retries), children {r['child_transitions']} = {r['batches']} batches x"
            f" {len(BATCH_TASKS)} task states{note} -> {(r['parent_transitions'] + r['child_transitions']) / n:.3f}"
            f" per party, ${(r['parent_transitions'] + r['child_transitions']) * SFN_PER_TRANSITION:.4f} per run"
        )
    print(
        "  children: moto runs the Distributed Map's child executions inline and keeps no histories;"
        " counted from the\n  Lambda Invoke requests of Pay / WriteStatements / MarkSettled (one per state"
        " entered or retried)."
    )

    others = Counter()
    for r in results:
        others.update(r["other"])
    unparsed = sum(r["unparsed"] for r in results)
    if others or unparsed:
        print()
        print(
            "Not by a step function (the bench's polling, moto's own Step Functions calls), all sizes: "
            + ", ".join(f"{s} {op} {n}" for (s, op), n in sorted(others.items(), key=lambda kv: -kv[1])[:8])
            + (f"; {unparsed} request bodies not parsed" if unparsed else "")
        )


def run_size(parties: int, run_date: str) -> dict[str, Any]:
    """One size on a local stack of its own: started, tagged, warmed, measured, stopped. Its folder is
    removed, unless the run failed (then its path is printed: the function logs are in it)."""
    state = Path(tempfile.mkdtemp(prefix="bench-settlement-"))
    stack = LocalStack(state)
    keep = False
    try:
        ready = stack.start()
        functions = stack.step_functions()
        tag_step_functions(stack, functions)
        warm = warm_up(stack, functions, stack.endpoints["state_machines"]["settlement"])
        print(f"  {parties:,} parties: local stack READY in {ready:.0f} s, warm-up {warm:.0f} s", flush=True)
        return measure(stack, functions, parties, run_date)
    except BenchFailed:
        keep = True
        print(f"  the local stack's folder (function logs in logs/, its output in local-stack.out): {state}")
        raise
    finally:
        stack.stop()
        if not keep:
            shutil.rmtree(state, ignore_errors=True)


def main() -> int:
    print(COST_MODEL)
    print()
    if not SIZES or min(SIZES) < 3:
        print("BENCH_PARTIES: sizes of at least 3 parties (platform, a brand, merchants)")
        return 2
    print(
        f"Each size on a fresh local stack, warmed first (a run with nothing due; {WARM_CONCURRENCY} warm"
        f" containers each of {', '.join(BATCH_TASKS)}):",
        flush=True,
    )
    results, failed = [], None
    for i, parties in enumerate(SIZES):
        run_date = date(2030 + i // 12, 1 + i % 12, 1).isoformat()
        try:
            results.append(run_size(parties, run_date))
        except BenchFailed as error:
            failed = str(error)
            break
    if results:
        report(results)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(this machine: {os.cpu_count()} CPUs, load average {load:.1f} at the end)")
    if failed:
        print(f"\nFAILED: {failed} (figures above are of the sizes before it)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
