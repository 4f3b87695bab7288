"""Clearing throughput and write cost: journals/s through the clearing function's real handler against moto,
DynamoDB requests and capacity units per journal, and the modelled per-tenant ceiling on real DynamoDB.

functions/clearing/handler.py runs in this process (loaded by path under its own module name, as
tests/integration/test_clearing_handler.py does) against moto (`mock_aws`) and a table made from
coupons.data.schema.MAIN. It is fed DynamoDB stream events of 100 records (the mapping's batch size),
built from the sample events in events/clearing/: fresh redemptions, partial reversals of them, a
redelivered batch, and a batch of records that are not clearing's (which the mapping's filter keeps from
the function on AWS). Each redemption / reversal item is first written to the table as the redemption code
writes it (with its clearing-pending index keys; not timed, not counted): clearing updates it.

Counted: requests to DynamoDB (a botocore `before-call.dynamodb` hook on the function's client).
Capacity: computed from DynamoDB's cost model (COST_MODEL, printed first) on item sizes measured from the
stored items, in a separate metered pass (its extra reads are not timed or counted).

  BENCH_BATCHES=20 python bench/clearing.py       (batches of 100 redemption records; default 20)
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import math
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "layers" / "core" / "python")):
    if path not in sys.path:
        sys.path.insert(0, path)

BATCHES = int(os.environ.get("BENCH_BATCHES", "20"))
BATCH_SIZE = 100  # infra/constructs/clearing.py BATCH_SIZE
TABLE = "coupons-bench-main"
MERCHANTS = [f"m-{i:03d}" for i in range(1, 21)]
RULE = {"PLATFORM": 5000, "BRAND": 3000, "MERCHANT": 2000}

PARTITION_WCU_PER_S = 1000  # DynamoDB's per-partition (and so per-item) write limit
TRANSACT_WCU_PER_KB = 2

COST_MODEL = """\
Cost model. DynamoDB capacity is computed, not read from moto (moto reports none for TransactWriteItems):
a write in TransactWriteItems costs 2 write units per item per 1 KB (rounded up) of the larger of the
item before and after; a plain write 1 unit per KB; a strongly consistent read 1 read unit per 4 KB of
what it returns (a Query: of all the items it returns, summed). Item sizes follow DynamoDB's rules
(attribute name bytes + value bytes; numbers ~1 byte per 2 digits + 1; lists and maps 3 bytes + 1 per
element) and are measured on the items as stored. A cancelled transaction (a redelivered record) is
counted as if it had committed: an upper bound. Partition limit: 1,000 write units/s per partition, so
per item; an item is never split, a partition key's distinct items can be (split for heat).
Each journal is posted in ONE TransactWriteItems: the journal item (conditional Put), the source item's
Update (the redemption / reversal: REMOVE its clearing-pending gsi2 keys, under attribute_exists), then per
leg a posting Put on ENTRIES#{account}#{shard} and a balance Update (ADD) on BALANCE#{account}#{shard},
the shard being hash(journal id) mod 32; a reversal also updates its redemption's journal (conditional).
Index writes: each global secondary index an item enters, leaves or stays in (projection ALL) is written
once (twice if its key changes), modelled at 1 unit per KB of the item (if AWS bills them at the
transactional rate, add as much again): each posting enters gsi1 (UNSETTLED#{shard}), the source item
leaves gsi2 (CLEARING_PENDING#{n}).
Timings are this machine, in-process against moto: moto's own work is in them, real DynamoDB's network
round trips (some ms each) are not."""


# -- DynamoDB item sizes ---------------------------------------------------------------------------


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
    raise ValueError(kind)


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def units(size: int, per: int) -> int:
    return max(1, math.ceil(size / per))


# -- metering --------------------------------------------------------------------------------------


class Meter:
    """Counts the function's DynamoDB requests; when `measuring`, sizes what each write touches (reading
    the items before and after through a separate client) and what each read returns."""

    def __init__(self, function_client, raw_client, gsi_keys: dict[str, tuple[str, str]]):
        self.requests: Counter = Counter()
        self.measuring = False
        self.wcu = 0.0
        self.wcu_gsi = 0.0
        self.rcu = 0.0
        self.items = 0
        self.sizes: dict[str, list[int]] = {}
        self.gsi_writes: Counter = Counter()  # "gsi1 put", "gsi2 delete", ...
        self._gsi_keys = gsi_keys
        self._raw = raw_client
        self._pending: list[tuple[str, dict, dict | None, dict | None]] = []
        events = function_client.meta.events
        events.register("provide-client-params.dynamodb", self._params)
        events.register("before-call.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    def reset(self) -> None:
        self.requests = Counter()
        self.wcu = self.wcu_gsi = self.rcu = 0.0
        self.items = 0
        self.gsi_writes = Counter()

    def _get(self, key: dict) -> dict | None:
        return self._raw.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item")

    def _params(self, params, **_):
        self._last = params

    def _before(self, model, **_):
        self.requests[model.name] += 1
        if not self.measuring:
            return
        self._pending = []
        if model.name == "TransactWriteItems":
            for action in self._last["TransactItems"]:
                kind, op = next(iter(action.items()))
                key = op.get("Key") or {"pk": op["Item"]["pk"], "sk": op["Item"]["sk"]}
                self._pending.append((kind, key, self._get(key), op.get("Item")))

    def _after(self, model, parsed, **_):
        if not self.measuring:
            return
        for _kind, key, before, proposed in self._pending:
            after = self._get(key)
            size = max(item_size(before), item_size(after), item_size(proposed))
            label = key["pk"]["S"].split("#")[0]
            if label == "REDEMPTION":  # the source item: a redemption or one of its reversals
                label = key["sk"]["S"].split("#")[0]
            self.sizes.setdefault(label, []).append(size)
            self.wcu += units(size, 1024) * TRANSACT_WCU_PER_KB
            self.items += 1
            for name, (hash_key, range_key) in self._gsi_keys.items():
                old = (before[hash_key], before[range_key]) if _keyed(before, hash_key, range_key) else None
                new = (after[hash_key], after[range_key]) if _keyed(after, hash_key, range_key) else None
                if old and new:
                    writes = [("update", after)] if old == new else [("delete", before), ("put", after)]
                elif old:
                    writes = [("delete", before)]
                elif new:
                    writes = [("put", after)]
                else:
                    writes = []
                for what, image in writes:
                    self.gsi_writes[f"{name} {what}"] += 1
                    self.wcu_gsi += units(item_size(image), 1024)
        self._pending = []
        if model.name == "GetItem":
            self.rcu += units(item_size(parsed.get("Item")), 4096)
        elif model.name == "Query":
            self.rcu += units(sum(item_size(i) for i in parsed.get("Items", [])), 4096)
        elif model.name == "TransactGetItems":  # 2 RCU per 4 KB of each item read (transactional)
            self.rcu += sum(2 * units(item_size(r.get("Item")), 4096) for r in parsed.get("Responses", []))


def _keyed(image: dict | None, hash_key: str, range_key: str) -> bool:
    return bool(image) and hash_key in image and range_key in image


# -- stream events ---------------------------------------------------------------------------------


def _sample(name: str) -> dict:
    return json.loads((ROOT / "events" / "clearing" / f"{name}.json").read_text())["Records"][0]


class Stream:
    """Stream records shaped like the sample events, with fresh ids and sequence numbers."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.sequence = 10**20
        self.redemption = _sample("redemption_batch")
        self.reversal = _sample("reversal_batch")

    def _record(self, template: dict, image: dict, event_name: str = "INSERT") -> dict:
        self.sequence += 1
        record = copy.deepcopy(template)
        record["eventID"] = f"evt-{self.sequence}"
        record["eventName"] = event_name
        record["dynamodb"]["SequenceNumber"] = str(self.sequence)
        record["dynamodb"]["Keys"] = {"pk": image["pk"], "sk": image["sk"]}
        record["dynamodb"]["NewImage"] = image
        return record

    def redemption_record(self, n: int) -> tuple[dict, dict]:
        image = copy.deepcopy(self.redemption["dynamodb"]["NewImage"])
        rid = f"rdm_BENCH{n:020d}"
        discount = self.rng.randint(100, 5000)
        image.update(
            pk={"S": f"REDEMPTION#{rid}"},
            redemption_id={"S": rid},
            merchant_id={"S": self.rng.choice(MERCHANTS)},
            discount={"N": str(discount)},
            order_amount={"N": str(discount * 10)},
            order_id={"S": f"o-{n}"},
        )
        return self._record(self.redemption, image), image

    def reversal_record(self, redemption: dict, n: int) -> dict:
        image = copy.deepcopy(self.reversal["dynamodb"]["NewImage"])
        rvs = f"rvs_BENCH{n:020d}"
        reversed_part = max(1, int(redemption["discount"]["N"]) // 3)
        image.update(
            pk=redemption["pk"],
            sk={"S": f"REVERSAL#2026-11-24T05:00:00Z#{rvs}"},
            reversal_id={"S": rvs},
            redemption_id=redemption["redemption_id"],
            merchant_id=redemption["merchant_id"],
            discount_reversed={"N": str(reversed_part)},
            refund_amount={"N": str(reversed_part * 10)},
        )
        return self._record(self.reversal, image)

    def foreign_record(self, n: int) -> dict:
        """A coupon MODIFY: what the table's stream mostly carries, filtered out by the mapping on AWS."""
        image = {
            "pk": {"S": f"COUPON#BENCH{n:016d}"},
            "sk": {"S": "COUPON"},
            "kind": {"S": "COUPON"},
            "state": {"S": "REDEEMED"},
        }
        return self._record(self.redemption, image, event_name="MODIFY")


def load_handler():
    spec = importlib.util.spec_from_file_location(
        "clearing_handler", ROOT / "functions" / "clearing" / "handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Context:
    function_name = "clearing-bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:clearing-bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


# -- the run ---------------------------------------------------------------------------------------


def main() -> int:
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="eu-west-1",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_NAMESPACE="CouponClearing/bench",
        POWERTOOLS_LOG_LEVEL="CRITICAL",
        TENANT="bench",
        TENANT_TIME_ZONE="Asia/Shanghai",
    )
    os.environ.pop("AWS_PROFILE", None)
    import warnings

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    import boto3
    from moto import mock_aws

    from coupons.data import ledger
    from coupons.data.schema import MAIN
    from infra.local import moto_fixes

    # The local stack's moto fixes: without them moto 5.2.5 deep-copies the whole table (every journal,
    # posting and balance so far) in each TransactWriteItems, and the figures would measure that.
    moto_fixes.apply()
    os.environ[MAIN.env_var] = TABLE
    print(COST_MODEL)
    print()
    with mock_aws():
        raw = boto3.client("dynamodb", region_name="eu-west-1")
        raw.create_table(**MAIN.create_table_kwargs(TABLE))
        store = ledger.LedgerStore(raw, TABLE)
        store.put_rule(
            {"rule_id": "fr_DEMO", "name": "bench 50/30/20", "brand_ids": ["brand-demo"]},
            {"version": 1, "shares": RULE, "effective_from": "2026-01-01T00:00:00Z", "status": "APPROVED"},
        )
        handler = load_handler()
        from coupons.data.clients import dynamodb

        gsi = {i.name: (i.partition_key, i.sort_key) for i in MAIN.indexes}
        meter = Meter(dynamodb(), raw, gsi)
        return run(handler, meter, store, ledger.SHARDS, raw)


def write_sources(raw, records: list[dict]) -> None:
    """Writes the records' redemption / reversal items as the redemption code does: with their
    clearing-pending index keys (coupons.data.redemptions.pending_index)."""
    from coupons.data.redemptions import pending_index

    items = []
    for record in records:
        image = record["dynamodb"]["NewImage"]
        source_id = (image.get("reversal_id") or image["redemption_id"])["S"]
        keys = pending_index(source_id, image["business_date"]["S"])
        items.append({**image, **{k: {"S": v} for k, v in keys.items()}})
    for i in range(0, len(items), 25):
        request = {TABLE: [{"PutRequest": {"Item": item}} for item in items[i : i + 25]]}
        while request:
            request = raw.batch_write_item(RequestItems=request).get("UnprocessedItems") or None


def deliver(handler, records: list[dict]) -> list:
    # The handler's metrics go to stdout as EMF lines (CloudWatch reads them from the log): not here.
    with contextlib.redirect_stdout(io.StringIO()):
        return handler.lambda_handler({"Records": records}, Context())["batchItemFailures"]


def timed(handler, meter: Meter, batches: list[list[dict]]) -> tuple[float, Counter, int]:
    meter.reset()
    started = time.perf_counter()
    failed = sum(len(deliver(handler, batch)) for batch in batches)
    return time.perf_counter() - started, meter.requests, failed


def run(handler, meter: Meter, store, shards: int, raw) -> int:
    rng = random.Random(5)
    stream = Stream(rng)
    # Warm the "container" (imports, clients, the handler's module state), as a warm Lambda is.
    warm = [stream.redemption_record(n) for n in range(BATCH_SIZE)]
    write_sources(raw, [r for r, _ in warm])
    assert deliver(handler, [r for r, _ in warm]) == []

    made = [stream.redemption_record(BATCH_SIZE + n) for n in range(BATCHES * BATCH_SIZE)]
    redemption_batches = [[r for r, _ in made[i : i + BATCH_SIZE]] for i in range(0, len(made), BATCH_SIZE)]
    reversals = [stream.reversal_record(image, n) for n, (_, image) in enumerate(made[: len(made) // 2])]
    reversal_batches = [reversals[i : i + BATCH_SIZE] for i in range(0, len(reversals), BATCH_SIZE)]
    foreign = [[stream.foreign_record(n) for n in range(BATCH_SIZE)]]
    write_sources(raw, [r for r, _ in made] + reversals)

    rows = []
    for name, batches in [
        ("redemption journals", redemption_batches),
        ("reversal journals", reversal_batches),
        ("redelivered batch (all duplicates)", redemption_batches[:1]),
        ("records not clearing's (skipped)", foreign),
    ]:
        elapsed, requests, failed = timed(handler, meter, batches)
        records = sum(len(b) for b in batches)
        assert failed == 0, f"{name}: {failed} records failed"
        rows.append((name, records, elapsed, requests))

    # The metered pass: fresh redemptions and reversals of them, sizes read around every write.
    metered = {}
    sample = [stream.redemption_record(10**6 + n) for n in range(BATCH_SIZE)]
    sample_reversals = [stream.reversal_record(image, 10**6 + n) for n, (_, image) in enumerate(sample)]
    write_sources(raw, [r for r, _ in sample] + sample_reversals)
    meter.measuring = True
    for name, batch in [
        ("redemption journals", [r for r, _ in sample]),
        ("reversal journals", sample_reversals),
    ]:
        meter.reset()
        assert deliver(handler, batch) == []
        n = len(batch)
        metered[name] = (
            meter.items / n,
            meter.wcu / n,
            meter.wcu_gsi / n,
            meter.rcu / n,
            {k: v / n for k, v in sorted(meter.gsi_writes.items())},
        )
    meter.measuring = False

    print(f"{'':40} {'records':>8} {'records/s':>10} {'ms/record':>10}  DynamoDB requests per record")
    for name, records, elapsed, requests in rows:
        per = ", ".join(f"{op} {n / records:g}" for op, n in sorted(requests.items())) or "none"
        print(f"{name:40} {records:8d} {records / elapsed:10.0f} {elapsed / records * 1000:10.2f}  {per}")
    print()
    print("Capacity per journal (metered pass, 100 journals each):")
    print(f"  {'':38} {'items':>5} {'WCU table':>9} {'WCU gsi':>7} {'WCU total':>9} {'RCU':>4}  index writes")
    for name, (items, wcu, wcu_gsi, rcu, gsi_writes) in metered.items():
        writes = ", ".join(f"{k} {v:g}" for k, v in gsi_writes.items()) or "none"
        print(f"  {name:38} {items:5.1f} {wcu:9.1f} {wcu_gsi:7.1f} {wcu + wcu_gsi:9.1f} {rcu:4.1f}  {writes}")
    print("  (RCU: strongly consistent reads)")
    for prefix, sizes in sorted(meter.sizes.items()):
        print(f"  item {prefix:33} {min(sizes):5d}–{max(sizes)} B ({len(sizes)} written)")

    # The ceiling: the platform account's share of a journal lands on ONE shard s: a posting (a new item
    # under ENTRIES#platform#s) and an ADD to the single item BALANCE#platform#s.
    balance_sizes = meter.sizes.get("BALANCE", [0])
    entry_sizes = meter.sizes.get("ENTRIES", [0])
    balance_wcu = units(max(balance_sizes), 1024) * TRANSACT_WCU_PER_KB
    entry_wcu = units(max(entry_sizes), 1024) * TRANSACT_WCU_PER_KB
    per_shard = PARTITION_WCU_PER_S / balance_wcu
    ceiling = shards * per_shard
    trips = sum(rows[0][3].values()) / rows[0][1]
    print()
    print(
        "Modelled ceiling on real DynamoDB, one tenant, the platform account (on nearly every journal):\n"
        f"a journal's platform leg writes, on ONE of the account's {shards} shards s (hash of the journal id),\n"
        f"a posting Put (a new item under ENTRIES#platform#s, {max(entry_sizes)} B: {entry_wcu} WCU) and an ADD\n"
        f"to BALANCE#platform#s ({max(balance_sizes)} B: {balance_wcu} WCU). The balance is the binding one:\n"
        f"a single item lives on one partition, {PARTITION_WCU_PER_S} WCU/s, while the postings are distinct\n"
        "items DynamoDB can split across partitions by sort key. So\n"
        f"    {shards} shards x {PARTITION_WCU_PER_S} WCU/s / {balance_wcu} WCU per journal"
        f" = {ceiling:,.0f} journals/s ({per_shard:,.0f}/s per shard)\n"
        "somewhat less in practice: the hash spreads journals over the shards evenly only on average.\n"
        "The same holds for each brand and merchant account. One unsharded balance item would cap the\n"
        f"tenant at {PARTITION_WCU_PER_S / balance_wcu:,.0f} journals/s. Long before either, the consumer binds:"
        " with\n"
        "ParallelizationFactor 1 each stream shard is cleared one batch at a time, one record after the\n"
        f"other, {trips:g} DynamoDB round trips per redemption journal (the rule's Query, the transaction)."
    )
    # The indexes' partitions: every posting of a journal on shard s enters gsi1 under UNSETTLED#s; every
    # redemption / reversal enters gsi2 under CLEARING_PENDING#n when written and leaves it when cleared.
    from coupons.data.redemptions import PENDING_SHARDS

    postings = metered["redemption journals"][4].get("gsi1 put", 0)
    per_unsettled = PARTITION_WCU_PER_S / postings if postings else float("inf")
    pending = PENDING_SHARDS * PARTITION_WCU_PER_S / 2
    print(
        "Index partitions (1 WCU per index write of an item under 1 KB, 1,000 WCU/s per partition; a throttled\n"
        "index write throttles the table write):\n"
        f"  gsi1 UNSETTLED#s takes the {postings:g} postings of each journal on shard s: unsplit,"
        f" {per_unsettled:,.0f} journals/s per shard\n"
        f"  ({shards * per_unsettled:,.0f}/s per tenant); its items are distinct, so DynamoDB can split it by sort key.\n"
        f"  gsi2 CLEARING_PENDING#n: 2 index writes per redemption or reversal (in when written, out when cleared):\n"
        f"  {PENDING_SHARDS} x {PARTITION_WCU_PER_S} / 2 = {pending:,.0f} redemptions and reversals/s per tenant, unsplit."
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(this machine: {os.cpu_count()} CPUs, load average {load:.1f} while it ran)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
