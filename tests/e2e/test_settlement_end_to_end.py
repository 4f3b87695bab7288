"""Issue #6's acceptance on the stack `make local` serves: redemptions over HTTP → clearing through the
stream → the real state machine (synthesized by CDK, executed by moto) → payouts and collections in the
simulated bank and statements in S3; then the faults: a channel failing for one party, a run stopped
halfway (its Lambda dying after the bank accepted) and resumed, and two starts for one date at once.

Runs are started the way `make settle DATE=…` starts them (infra/local/settle.py, a subprocess): DATE is
the settlement date X, whose daily run pays what is due by X and came before X's start; the dates
settled here are after today (today's T+1 postings are due tomorrow, paid by tomorrow's run), whose
cut-off the API refuses as in the future by design; the API's POST is exercised on a past date at the end.

Every test makes its own brand and merchants, so their amounts are this test's alone; each run settles
a date of its own (today + 1, + 2, …), and claims whatever is due by then, including other tests'
postings (the platform account is shared): those parties are checked by the identity
Σ payouts − Σ collections + Σ carried = Σ lines, not by hand. The module has a stack of its own: on
the shared one, the modules before it leave hundreds of postings due tomorrow (the concurrency bursts),
and the first run spent minutes paying them.

Funding rule PLATFORM 50% / BRAND 30% / MERCHANT 20%; minimum transfer (demo tenant) CNY 100.
Acceptance world (FIXED 10.00 off, and PERCENT 1% off; orders of 50.00):
  R1 at M1: D 1000 → 500/300/200 → platform −500, brand −300, M1 +800
  R2 at M1: the same                → platform −500, brand −300, M1 +800
  R3 at M2: D 1000 → platform −500, brand −300, M2 +800;
     reversal of half the order: floor(1000 × 2500/5000) = 500 over 500/300/200 → 250/150/100
     → platform +250, brand +150, M2 −400
  R4 at M3: 1% of 5000 = 50 → 25/15/10 → platform −25, brand −15, M3 +40
  brand: −300 −300 −300 +150 −15 = −765 → a COLLECTION of 765
  M1: +1600 → PAYOUT 1600;  M2: +400 → PAYOUT 400;  M3: +40 < 100 → CARRY_FORWARD 40 (due the next day)
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coupons.channels.simulated import SimulatedBank
from tests.e2e.conftest import own_local_stack
from tests.e2e.support import Api, aws_client, redeem, reverse, wait_for_clearing

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

local_stack = own_local_stack()

REPO = Path(__file__).resolve().parents[2]
SHARES = {"PLATFORM": 5000, "BRAND": 3000, "MERCHANT": 2000}
RUN_WAIT_S = 240


@pytest.fixture(scope="module")
def aws(local_stack):
    return {s: aws_client(local_stack, s) for s in ("dynamodb", "stepfunctions", "s3", "events", "sqs")}


@pytest.fixture(scope="module")
def bank(local_stack, aws) -> SimulatedBank:
    return SimulatedBank(aws["dynamodb"], local_stack["tables"]["simulatedBank"])


@pytest.fixture(scope="module")
def completed_events(local_stack, aws):
    """An SQS queue that receives the SettlementRunCompleted events the state machine emits."""
    queue = aws["sqs"].create_queue(QueueName=f"settled-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = aws["sqs"].get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = f"settled-{uuid.uuid4().hex[:8]}"
    aws["events"].put_rule(
        Name=rule,
        EventPattern=json.dumps(
            {"source": ["coupons.settlement"], "detail-type": ["SettlementRunCompleted"]}
        ),
    )
    aws["events"].put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    return queue


class World:
    """A new brand and merchants with keys, the rule, a FIXED and a PERCENT campaign (T+1)."""

    def __init__(self, api: Api, admin: str, merchants: int):
        self.api, self.admin = api, admin
        tag = uuid.uuid4().hex[:8]
        self.brand_id = f"brand-stl-{tag}"
        self.merchant_ids = [f"m-stl-{tag}-{i}" for i in range(1, merchants + 1)]
        self.keys = {
            m: api.ok("POST", "/v1/api-keys", admin, {"principal": f"merchant:{m}"})["api_key"]
            for m in self.merchant_ids
        }
        self.issuer_key = api.ok("POST", "/v1/api-keys", admin, {"principal": f"issuer:{self.brand_id}"})[
            "api_key"
        ]
        rule = api.ok(
            "POST",
            "/v1/funding-rules",
            admin,
            {"name": f"stl {tag}", "shares": SHARES, "brand_ids": [self.brand_id]},
        )
        common = {
            "brand_id": self.brand_id,
            "currency": "CNY",
            "valid_days": 30,
            "total_quantity": 100,
            "funding_rule_id": rule["rule_id"],
            "settlement_cycle": "T+1",
        }
        self.fixed = self._campaign({"name": f"stl fixed {tag}", "type": "FIXED", "amount": 1000, **common})
        self.percent = self._campaign(
            {"name": f"stl 1% {tag}", "type": "PERCENT", "percent_bps": 100, "max_discount": 1000, **common}
        )
        # A redemption within the second the rule was made finds no version in force (see the clearing test).
        effective = datetime.fromisoformat(rule["versions"][0]["effective_from"].replace("Z", "+00:00"))
        time.sleep(max(0.0, effective.timestamp() + 1.05 - time.time()))

    def _campaign(self, body: dict) -> str:
        campaign = self.api.ok("POST", "/v1/campaigns", self.admin, body)
        self.api.ok("POST", f"/v1/campaigns/{campaign['campaign_id']}/activate", self.admin)
        return campaign["campaign_id"]

    def redeem(self, merchant_id: str, campaign_id: str | None = None, order_amount: int = 5000) -> dict:
        code = self.api.ok(
            "POST",
            f"/v1/campaigns/{campaign_id or self.fixed}/coupons",
            self.admin,
            {"user_id": f"u-{uuid.uuid4().hex[:8]}"},
        )["code"]
        return redeem(self.api, self.keys[merchant_id], merchant_id, code, order_amount)

    def business_date(self, redemption: dict) -> str:
        return wait_for_clearing(self.api, self.admin, redemption["redemption_id"])["business_date"]


def settle(local_stack, business_date: str, *, wait: bool = True) -> subprocess.Popen | dict:
    """`make settle DATE=…` (its command, on this session's stack); returns the run when it is done."""
    command = [
        sys.executable, "-m", "infra.local.settle", "--date", business_date,
        "--endpoints-file", local_stack["endpoints_file"], "--timeout", str(RUN_WAIT_S),
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return proc
    out, err = proc.communicate(timeout=RUN_WAIT_S + 30)
    assert proc.returncode == 0, f"make settle {business_date}: {proc.returncode}\n{out}\n{err}"
    return run_view(out)


def run_view(out: str) -> dict:
    text = out[out.index("{") : out.rindex("}") + 1]
    return json.loads(text)


def party(run: dict, account: str) -> dict:
    (found,) = [p for p in run["parties"] if p["party"] == account]
    (currency,) = found["currencies"]
    return currency


class Paid(dict):
    """What the bank's own books say it accepted for one run: party → [(amount, direction, reference)]."""


def paid(bank: SimulatedBank, run_id: str) -> Paid:
    found = Paid()
    for item in bank.records():
        if item["instruction_id"].startswith(f"ins_{run_id[4:]}_"):
            found.setdefault(item["party"], []).append(
                Receipt(item["amount"], item["direction"], item["channel_reference"])
            )
    return found


@dataclass(frozen=True)
class Receipt:
    amount: int
    direction: str
    channel_reference: str


def full_run(local_stack, api: Api, admin: str, run_id: str) -> dict:
    """Every party of the run (all pages)."""
    parties, cursor = [], None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = api.ok("GET", f"/v1/settlement-runs/{run_id}", admin, **params)
        parties += page["parties"]
        cursor = page["next_cursor"]
        if not cursor:
            return {**page, "parties": parties}


def assert_identity(run: dict) -> None:
    """Per currency: Σ payouts − Σ collections + Σ carried = Σ lines, and the totals say the same."""
    for total in run["totals"]:
        currency = total["currency"]
        outcomes = [c for p in run["parties"] for c in p["currencies"] if c["currency"] == currency]
        payouts = sum(c["transfer"] for c in outcomes if c["decision"] == "PAYOUT")
        collections = sum(c["transfer"] for c in outcomes if c["decision"] == "COLLECTION")
        carried = sum(c["carried"] for c in outcomes)
        assert payouts - collections + carried == sum(c["net"] for c in outcomes) == total["net"]
        assert (payouts, collections, carried) == (
            total["payouts"],
            total["collections"],
            total["carried_forward"],
        )


def next_date(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


@pytest.fixture(scope="module")
def today(local_stack) -> str:
    """Today's business date: the calendar date in the tenant's zone, as redemption records it."""
    return datetime.now(ZoneInfo(local_stack["time_zone"])).date().isoformat()


# -- acceptance ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def accepted(local_stack, api: Api, keys, today, bank, aws, completed_events):
    admin = keys["admin"]
    world = World(api, admin, 3)
    m1, m2, m3 = world.merchant_ids
    world.redeem(m1)
    world.redeem(m1)
    r3 = world.redeem(m2)
    world.business_date(r3)
    reverse(api, world.keys[m2], r3["redemption_id"], 2500)
    r4 = world.redeem(m3, world.percent)
    assert r4["discount"] == 50
    assert world.business_date(r4) == today
    day = next_date(today, 1)
    run = settle(local_stack, day)
    return {"world": world, "run": run, "day": day, "full": full_run(local_stack, api, admin, run["run_id"])}


def test_a_t_plus_1_run_pays_collects_and_carries_the_hand_computed_amounts(accepted, bank):
    world, run = accepted["world"], accepted["full"]
    m1, m2, m3 = (f"merchant:{m}" for m in world.merchant_ids)
    brand = f"brand:{world.brand_id}"
    assert run["status"] == "CLOSED"
    assert {k: party(run, brand)[k] for k in ("net", "decision", "transfer")} == {
        "net": -765, "decision": "COLLECTION", "transfer": 765,
    }  # fmt: skip
    assert (party(run, m1)["decision"], party(run, m1)["transfer"]) == ("PAYOUT", 1600)
    assert (party(run, m2)["decision"], party(run, m2)["transfer"], party(run, m2)["lines"]) == (
        "PAYOUT",
        400,
        2,
    )
    assert {k: party(run, m3)[k] for k in ("net", "decision", "transfer", "carried")} == {
        "net": 40, "decision": "CARRY_FORWARD", "transfer": 0, "carried": 40,
    }  # fmt: skip
    assert_identity(run)

    receipts = paid(bank, run["run_id"])
    assert [(r.amount, r.direction) for r in receipts[m1]] == [(1600, "PAYOUT")]
    assert [(r.amount, r.direction) for r in receipts[m2]] == [(400, "PAYOUT")]
    assert [(r.amount, r.direction) for r in receipts[brand]] == [(765, "COLLECTION")]
    assert m3 not in receipts
    assert party(run, m1)["channel_reference"] == receipts[m1][0].channel_reference
    # One instruction per party that moves money, nothing else.
    movers = {p["party"] for p in run["parties"] if p["currencies"][0]["transfer"]}
    assert set(receipts) == movers and all(len(r) == 1 for r in receipts.values())


def test_statements_in_s3_list_every_posting_and_total_the_transfer(accepted, api: Api, local_stack, aws):
    world, run = accepted["world"], accepted["full"]
    m2 = world.merchant_ids[1]
    statement = api.ok("GET", f"/v1/settlement-runs/{run['run_id']}/statements/merchant:{m2}", world.keys[m2])
    assert [line["amount"] for line in statement["lines"]] in ([800, -400], [-400, 800])
    assert {line["source_kind"] for line in statement["lines"]} == {"REDEMPTION", "REVERSAL"}
    assert all(line["rule_version"] == 1 and line["order_id"] and line["code"] for line in statement["lines"])
    (total,) = statement["totals"]
    assert total["net"] == total["transfer"] == sum(line["amount"] for line in statement["lines"]) == 400
    csv_text = api.call(
        "GET", f"/v1/settlement-runs/{run['run_id']}/statements/merchant:{m2}", world.keys[m2]
    )  # JSON by default; CSV when asked
    assert csv_text.headers["content-type"].startswith("application/json")
    import requests

    as_csv = requests.get(
        f"{api.base_url}/v1/settlement-runs/{run['run_id']}/statements/merchant:{m2}",
        headers={"x-api-key": world.keys[m2], "Accept": "text/csv"},
        timeout=30,
    )
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = as_csv.text.strip().splitlines()
    assert len(rows) == 1 + 2 + 1  # header, two postings, the total
    # The total row ends in decision, transfer, carried, reference, then (issue #14) the balances and fee.
    assert rows[-1].split(",")[-8:-4] == ["PAYOUT", "400", "0", total["channel_reference"]]
    assert rows[-1].split(",")[-4:] == [
        str(total[k]) for k in ("opening_balance", "fee", "transferred", "closing_balance")
    ]
    assert total["transferred"] == 400 and total["closing_balance"] == total["opening_balance"]
    # The same documents are in the tenant's statements bucket.
    bucket = local_stack["buckets"]["statements"]
    key = f"settlement-runs/{run['run_id']}/statements/merchant:{m2}.json"
    assert json.loads(aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read()) == statement
    # A merchant reads no one else's statement.
    other = api.call(
        "GET",
        f"/v1/settlement-runs/{run['run_id']}/statements/merchant:{world.merchant_ids[0]}",
        world.keys[m2],
    )
    assert other.status_code == 404


def test_every_claimed_posting_is_settled_by_this_run_once(accepted, local_stack, aws):
    world, run = accepted["world"], accepted["full"]
    ddb = aws["dynamodb"]
    for merchant in world.merchant_ids:
        postings = []
        for shard in range(32):
            postings += ddb.query(
                TableName=local_stack["tables"]["main"],
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"ENTRIES#merchant:{merchant}#{shard}"}},
            )["Items"]
        assert postings
        assert {(p["run_id"]["S"], p["settled"]["BOOL"]) for p in postings} == {(run["run_id"], True)}
        assert all("gsi1pk" not in p for p in postings)  # out of the unsettled index


def test_a_carried_amount_is_due_the_next_day(accepted, local_stack, aws):
    world, run = accepted["world"], accepted["full"]
    m3 = f"merchant:{world.merchant_ids[2]}"
    items = aws["dynamodb"].query(
        TableName=local_stack["tables"]["main"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CARRY#{m3}"}},
    )["Items"]
    assert [(i["amount"]["N"], i["due_date"]["S"], i["carried_from"]["S"]) for i in items] == [
        ("40", next_date(accepted["day"], 1), run["run_id"])
    ]


def test_the_run_emits_settlement_run_completed(accepted, aws, completed_events):
    run_id = accepted["run"]["run_id"]
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        for message in (
            aws["sqs"].receive_message(QueueUrl=completed_events, WaitTimeSeconds=1).get("Messages", [])
        ):
            seen.append(json.loads(message["Body"]))
        if any(e["detail"]["run_id"] == run_id for e in seen):
            break
    event = next(e for e in seen if e["detail"]["run_id"] == run_id)
    assert event["detail-type"] == "SettlementRunCompleted" and event["source"] == "coupons.settlement"
    assert event["detail"]["totals"] == accepted["full"]["totals"]


def test_settling_a_closed_date_again_starts_nothing(accepted, local_stack, bank):
    before = paid(bank, accepted["run"]["run_id"])
    again = settle(local_stack, accepted["day"])
    assert again["status"] == "CLOSED" and again["attempt"] == 1
    assert paid(bank, accepted["run"]["run_id"]) == before


# -- faults ----------------------------------------------------------------------------------


def test_a_channel_failing_for_one_party_is_retried_and_the_others_are_paid_once(
    local_stack, api: Api, keys, today, bank
):
    world = World(api, keys["admin"], 3)
    for m in world.merchant_ids:
        world.business_date(world.redeem(m))  # 800 each
    flaky = f"merchant:{world.merchant_ids[1]}"
    bank.inject(flaky, "fail", times=2)  # the Pay step fails twice for it, then the channel is back

    run = settle(local_stack, next_date(today, 2))

    assert run["status"] == "CLOSED"
    receipts = paid(bank, run["run_id"])
    for m in world.merchant_ids:
        assert [r.amount for r in receipts[f"merchant:{m}"]] == [800]
    assert all(len(r) == 1 for r in receipts.values())
    view = full_run(local_stack, api, keys["admin"], run["run_id"])
    assert_identity(view)
    assert party(view, flaky)["status"] == "SENT"


def test_a_run_stopped_after_half_its_payouts_resumes_and_pays_nobody_twice(
    local_stack, api: Api, keys, today, bank, aws
):
    world = World(api, keys["admin"], 6)
    for m in world.merchant_ids:
        world.business_date(world.redeem(m))
    day = next_date(today, 3)
    merchants = sorted(f"merchant:{m}" for m in world.merchant_ids)
    # Parties are paid in order within a batch; the 4th merchant's payment is accepted by the bank,
    # then the Lambda dies before recording it (the acknowledgement is lost with it).
    bank.inject(merchants[3], "crash", times=1)
    proc = settle(local_stack, day, wait=False)

    run_id = f"stl_{day.replace('-', '')}"
    deadline = time.monotonic() + RUN_WAIT_S
    while merchants[3] not in paid(bank, run_id):
        assert time.monotonic() < deadline, "the crashing payment never reached the bank"
        time.sleep(0.05)
    sfn = aws["stepfunctions"]
    arn = local_stack["state_machines"]["settlement"]
    running = [
        e for e in sfn.list_executions(stateMachineArn=arn)["executions"] if e["name"].endswith(f"{day}-1")
    ]
    sfn.stop_execution(
        executionArn=running[0]["executionArn"], error="Operator", cause="stopped halfway by the test"
    )
    out, _ = proc.communicate(timeout=RUN_WAIT_S)
    stopped = run_view(out)
    assert (stopped["status"], stopped["execution_status"]) == ("RUNNING", "ABORTED")
    halfway = paid(bank, run_id)
    assert all(m in halfway for m in merchants[:4]) and all(len(r) == 1 for r in halfway.values())

    resumed = settle(local_stack, day)  # the same command again: attempt 2 of the same run

    assert resumed["status"] == "CLOSED" and resumed["attempt"] == 2
    receipts = paid(bank, run_id)
    assert all(len(r) == 1 for r in receipts.values()), receipts
    for m in merchants:
        assert [r.amount for r in receipts[m]] == [800]
    view = full_run(local_stack, api, keys["admin"], run_id)
    assert_identity(view)
    assert party(view, merchants[3])["channel_reference"] == receipts[merchants[3]][0].channel_reference


def test_two_starts_for_one_date_at_once_make_one_run(local_stack, api: Api, keys, today, bank, aws):
    world = World(api, keys["admin"], 2)
    for m in world.merchant_ids:
        world.business_date(world.redeem(m))
    day = next_date(today, 4)
    sfn = aws["stepfunctions"]
    arn = local_stack["state_machines"]["settlement"]
    barrier = threading.Barrier(3)
    outcomes, errors = [], []

    def caught(start):
        def run():
            barrier.wait()
            try:
                start()
            except Exception as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(repr(error))

        return run

    @caught
    def by_hand():
        outcomes.append(settle(local_stack, day))

    @caught
    def by_schedule():  # an execution of its own name, as the EventBridge schedule starts one
        sfn.start_execution(
            stateMachineArn=arn,
            name=f"sched-{uuid.uuid4().hex[:8]}",
            input=json.dumps({"business_date": day}),
        )

    threads = [threading.Thread(target=f) for f in (by_hand, by_hand, by_schedule)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN_WAIT_S)
    run_id = f"stl_{day.replace('-', '')}"
    deadline = time.monotonic() + RUN_WAIT_S
    while api.ok("GET", f"/v1/settlement-runs/{run_id}", keys["admin"])["status"] != "CLOSED":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    receipts = paid(bank, run_id)
    for m in world.merchant_ids:
        assert [r.amount for r in receipts[f"merchant:{m}"]] == [800]
    assert all(len(r) == 1 for r in receipts.values())
    assert errors == []
    assert [(o["run_id"], o["attempt"]) for o in outcomes] == [(run_id, 1)] * 2


def test_the_api_starts_a_past_date_and_refuses_one_whose_cutoff_is_in_the_future(api: Api, keys, today):
    admin = keys["admin"]
    past = next_date(today, -30)
    first = api.call("POST", "/v1/settlement-runs", admin, {"settlement_date": past})
    assert first.status_code in (200, 202), first.text
    run_id = first.json()["run_id"]
    deadline = time.monotonic() + RUN_WAIT_S
    while api.ok("GET", f"/v1/settlement-runs/{run_id}", admin)["status"] != "CLOSED":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    again = api.call("POST", "/v1/settlement-runs", admin, {"settlement_date": past})
    assert again.status_code == 200 and again.json()["run_id"] == run_id and again.json()["started"] is False
    # Tomorrow's daily run is cut at tomorrow's start: not yet (make settle may, the API may not).
    refused = api.call("POST", "/v1/settlement-runs", admin, {"settlement_date": next_date(today, 1)})
    assert refused.status_code == 400 and refused.json()["field"] == "settlement_date"
    assert refused.json()["code"] == "settlement_cutoff_in_future"
