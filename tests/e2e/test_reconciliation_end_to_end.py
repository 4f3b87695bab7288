"""Issue #16's acceptance on the stack `make local` serves: redemptions → a settlement run → the simulated
bank's statement file with four injected differences (a missing transfer, a returned payout, a fee
difference, a cut-off line), written by `make bank-statement` (its command) → S3's Object Created →
EventBridge's rule → the Start function → the real reconciliation state machine → exceptions and their
automatic compensations → the API (a finance key: list, resolve) → the same file version delivered again
starts nothing.

The statement day is today (the bank books in the tenant's zone when it accepts); settlement runs
"tomorrow" as in the settlement e2e. Other tests' transfers of today may be on the file too: only this
test's injected lines are asserted by hand."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import time

import pytest

from coupons.domain.reconciliation import channel_bill
from coupons.domain.reconciliation.formats import read_statement
from coupons.services.reconciliation import execution_name_of, run_id_of
from tests.e2e.conftest import own_local_stack
from tests.e2e.support import Api, aws_client
from tests.e2e.test_settlement_end_to_end import REPO, World, next_date, settle

WAIT_S = 240


# A stack of its own: this module settles "tomorrow" and closes that run, and the settlement and trace
# modules settle the same date on the shared stack after it (their postings would find it closed).
# In the e2e group with the rest: two local stacks at once on 2 cores starve each other's functions.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

local_stack = own_local_stack()


@pytest.fixture(scope="module")
def aws(local_stack):
    return {s: aws_client(local_stack, s) for s in ("dynamodb", "stepfunctions", "s3", "lambda")}


@pytest.fixture(scope="module")
def finance(api: Api, keys) -> str:
    return api.ok("POST", "/v1/api-keys", keys["admin"], {"principal": "finance"})["api_key"]


def bank_statement(local_stack, day: str, inject: str, seed: int) -> tuple[str, str, list[tuple[str, str, str]]]:
    """`make bank-statement DATE=… INJECT=… SEED=…` on this session's stack: key, version, injections."""
    command = [sys.executable, "-m", "infra.local.bank_statement", "--date", day, "--inject", inject,
               "--seed", str(seed), "--endpoints-file", local_stack["endpoints_file"]]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.strip().splitlines()
    key, version = first.split(" ")[0], first.split("(version ")[1].split(")")[0]
    injected = []
    for line in rest:  # "  fee: ins_… -> FEE_MISMATCH ins_…"
        kind, _, tail = line.strip().partition(": ")
        instruction, _, expected = tail.partition(" -> ")
        cls, exception_key = expected.split(" ")
        injected.append((kind, cls, exception_key))
    return key, version, injected


def wait_for_execution(local_stack, aws, name: str) -> dict:
    arn = local_stack["state_machines"]["reconciliation"]
    execution_arn = arn.replace(":stateMachine:", ":execution:") + f":{name}"
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            described = aws["stepfunctions"].describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
        except aws["stepfunctions"].exceptions.ExecutionDoesNotExist:
            pass
        assert time.monotonic() < deadline, f"{name} did not finish in {WAIT_S} s"
        time.sleep(1)


@pytest.fixture(scope="module")
def reconciled(local_stack, api: Api, keys, aws):
    admin = keys["admin"]
    world = World(api, admin, 4)
    for merchant in world.merchant_ids:
        world.redeem(merchant)
        world.redeem(merchant)
    today = world.business_date(world.redeem(world.merchant_ids[0]))
    run = settle(local_stack, next_date(today, 1))
    key, version, injected = bank_statement(local_stack, today, "missing=1,returned=1,fee=1,cutoff=1", seed=16)
    execution = wait_for_execution(local_stack, aws, execution_name_of(key, version))
    return {"world": world, "run": run, "key": key, "version": version, "injected": injected,
            "execution": execution, "today": today}  # fmt: skip


def test_the_files_arrival_runs_the_real_state_machine_to_success(reconciled):
    assert reconciled["execution"]["status"] == "SUCCEEDED", reconciled["execution"]


def exceptions(api: Api, finance: str, **params) -> list[dict]:
    found, cursor = [], None
    while True:
        page = api.ok("GET", "/v1/reconciliation/exceptions", finance, limit=200, **params,
                      **({"cursor": cursor} if cursor else {}))  # fmt: skip
        found += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return found


def test_each_injected_difference_is_one_exception_of_its_class_compensated_automatically(reconciled, api, finance):
    found = {(e["class"], e["key"]): e for e in exceptions(api, finance)}
    assert sorted(cls for _, cls, _ in reconciled["injected"]) == [
        "FEE_MISMATCH", "MISSING_AT_CHANNEL", "STATUS_MISMATCH", "TIMING"]  # fmt: skip
    actions = {cls: found[(cls, key)]["action"] for _, cls, key in reconciled["injected"]}
    assert actions == {"MISSING_AT_CHANNEL": "REMATCH", "STATUS_MISMATCH": "RETURN_AND_REVERSE",
                       "FEE_MISMATCH": "REVIEW", "TIMING": "CLOSE"}  # fmt: skip
    statuses = {cls: found[(cls, key)]["status"] for _, cls, key in reconciled["injected"]}
    assert statuses["FEE_MISMATCH"] == "OPEN"  # above the (default, zero) tolerance: finance reviews
    assert {s for c, s in statuses.items() if c != "FEE_MISMATCH"} == {"RESOLVED"}


def test_the_fee_difference_is_resolved_with_a_finance_key(reconciled, api: Api, finance):
    [fee] = [(cls, key) for _, cls, key in reconciled["injected"] if cls == "FEE_MISMATCH"]
    [exception] = [e for e in exceptions(api, finance, **{"class": "FEE_MISMATCH"}) if e["key"] == fee[1]]
    resolved = api.ok("POST", f"/v1/reconciliation/exceptions/{exception['exception_id']}/resolve", finance,
                      {"action": "ACCEPT_CHANNEL", "note": "the bank's fee schedule changed"})  # fmt: skip
    assert resolved["status"] == "RESOLVED" and resolved["resolution"]["by"] == "finance"


def test_the_reconciliation_functions_post_resolutions_step_does_finances_resolution_once(
    reconciled, local_stack, aws, api: Api, finance
):
    """The API records a resolution; the steps function (which holds the ledger and the channel: a
    RESEND is sent here) does it once, however often the step runs."""

    def step() -> dict:
        answer = aws["lambda"].invoke(FunctionName=local_stack["functions"]["reconciliationSteps"],
                                      Payload=json.dumps({"step": "post_resolutions"}).encode())  # fmt: skip
        return json.loads(answer["Payload"].read())

    first, again = step(), step()

    # The fee's ACCEPT_CHANNEL journal, once: by the first step, or already by the ResolutionsSchedule
    # rule (every 5 minutes) if it fired since the resolution; never again.
    assert first["posted"] <= 1 and again == {"posted": 0}
    # Posted (the fee's 挂账 emptied), and not twice (it would be negative).
    suspense = api.balance("suspense:simulated", finance)
    assert set(suspense.values()) <= {0}, (suspense, [
        (e["class"], e["status"], e.get("action"), e.get("amount_at_stake"), e.get("detail"))
        for e in exceptions(api, finance)])  # fmt: skip


def test_the_same_file_version_delivered_again_starts_no_second_run(reconciled, local_stack, aws):
    event = {"detail": {"bucket": {"name": local_stack["buckets"]["statements"]},
                        "object": {"key": reconciled["key"], "version-id": reconciled["version"]}}}  # fmt: skip
    answer = aws["lambda"].invoke(FunctionName=local_stack["functions"]["reconciliationStart"],
                                  Payload=json.dumps(event).encode())  # fmt: skip
    assert json.loads(answer["Payload"].read())["started"] is False


def test_the_days_file_re_uploaded_out_of_id_order_runs_the_bucket_path_to_the_same_exceptions(
    reconciled, local_stack, aws, api: Api, finance
):
    """A real channel's file is in time order: the state machine's MoreBuckets? → MatchBucket → Settle."""
    bucket, key, day = local_stack["buckets"]["statements"], reconciled["key"], reconciled["today"]
    raw = aws["s3"].get_object(Bucket=bucket, Key=key, VersionId=reconciled["version"])["Body"].read()
    lines = list(read_statement(io.BytesIO(raw), channel_bill.NAME, channel="simulated", statement_date=day))
    [zone] = [x.split(",")[1] for x in gzip.decompress(raw).decode().splitlines() if x.startswith("#time_zone,")]
    shuffled = sorted(lines, key=lambda x: x.instruction_id or "", reverse=True)
    text = io.StringIO()
    channel_bill.write(text, channel="simulated", statement_date=day, time_zone=zone, lines=shuffled)
    before = {e["exception_id"] for e in exceptions(api, finance, date=day)}

    version = aws["s3"].put_object(Bucket=bucket, Key=key, Body=gzip.compress(text.getvalue().encode(), mtime=0))["VersionId"]
    execution = wait_for_execution(local_stack, aws, execution_name_of(key, version))

    history = aws["stepfunctions"].get_execution_history(executionArn=execution["executionArn"])["events"]
    assert execution["status"] == "SUCCEEDED", (execution.get("error"), execution.get("cause"), history[-4:])
    run = api.ok("GET", f"/v1/reconciliation/runs/{run_id_of(key, version, day)}", finance)
    assert run["status"] == "COMPLETED" and run["lines"] == len(lines)
    assert {e["exception_id"] for e in exceptions(api, finance, date=day)} == before


def test_the_next_days_file_reconciles_clean(reconciled, local_stack, aws, api: Api, finance):
    day = next_date(reconciled["today"], 1)
    key, version, _ = bank_statement(local_stack, day, "", seed=0)
    execution = wait_for_execution(local_stack, aws, execution_name_of(key, version))
    assert execution["status"] == "SUCCEEDED", execution
    [run] = api.ok("GET", "/v1/reconciliation/runs", finance, date=day)["items"]
    assert run["by_class"] == {} and run["status"] == "COMPLETED"


def test_an_order_cancellation_event_reverses_its_redemption_automatically(local_stack, api: Api, keys):
    world = World(api, keys["admin"], 1)
    merchant = world.merchant_ids[0]
    redemption = world.redeem(merchant)
    event = {"order_id": redemption["order_id"], "type": "CANCELLED", "occurred_at": "2026-03-10T12:00:00+08:00"}

    first = api.ok("POST", "/v1/orders/events", world.keys[merchant], event)
    again = api.ok("POST", "/v1/orders/events", world.keys[merchant], {"events": [event]})

    rid = redemption["redemption_id"]
    [reversal] = api.ok("GET", f"/v1/redemptions/{rid}/reversals", keys["admin"])["items"]
    assert reversal["refund_amount"] == redemption["order_amount"]
    assert reversal["discount_reversed"] == redemption["discount"]
    assert first["items"][0]["effects"] == {rid: {"reversal_id": reversal["reversal_id"]}}
    assert again["items"][0]["recorded"] is False and again["items"][0]["effects"] == first["items"][0]["effects"]
