"""/v1/settlement-runs through the API function on moto: one run per settlement date and kind started
once (a failed or stopped one resumed as the next attempt), refused inputs (a cut-off still in the
future among them) that write nothing, paged parties, statements each principal may read."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import boto3
import pytest

from coupons import settlement_wiring
from coupons.channels.simulated import SimulatedBank
from coupons.data.ledger import LedgerStore
from coupons.data.redemptions import RedemptionStore
from coupons.data.schema import BANK
from coupons.data.settlement import SettlementStore
from coupons.data.statements import StatementStore
from coupons.domain import settlement as rules
from coupons.domain.ledger import Journal, Leg
from coupons.domain.settlement import PARTY_BUCKETS, party_bucket
from coupons.services.settlement import SettlementSteps
from tests.integration.conftest import TABLE
from tests.integration.test_api_plumbing import PROBLEM, assert_problem

BUCKET = "coupons-test-statements"
MACHINE = "coupons-test-settlement"
PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


def today():
    """Today in the tenant's zone of the `aws` fixture: the first day that is not over. Read when the
    request is made, not when the tests are collected (midnight may pass in between)."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


PAST = (today() - timedelta(days=3)).isoformat()
RUN = rules.run_id(PAST)


class Settlement:
    def __init__(self, sfn, s3, arn):
        self.sfn, self.s3, self.arn = sfn, s3, arn

    def executions(self) -> dict[str, dict]:
        listed = self.sfn.list_executions(stateMachineArn=self.arn)["executions"]
        return {e["name"]: e for e in listed}

    def input_of(self, name: str) -> dict:
        arn = self.executions()[name]["executionArn"]
        return json.loads(self.sfn.describe_execution(executionArn=arn)["input"])

    def stop(self, name: str) -> None:
        self.sfn.stop_execution(executionArn=self.executions()[name]["executionArn"])


@pytest.fixture
def settlement(api, monkeypatch):
    """A state machine whose executions moto records but does not run, the statements bucket, and the
    settlement services rebuilt over them."""
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    machine = sfn.create_state_machine(
        name=MACHINE, definition=json.dumps(PASS), roleArn="arn:aws:iam::123456789012:role/settlement"
    )
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    monkeypatch.setenv(settlement_wiring.STATE_MACHINE_ARN, machine["stateMachineArn"])
    monkeypatch.setenv(settlement_wiring.STATEMENTS_BUCKET, BUCKET)
    settlement_wiring.reset()
    yield Settlement(sfn, s3, machine["stateMachineArn"])
    settlement_wiring.reset()


def start(api, key, body=None, **kwargs):
    return api.call(
        "POST",
        "/v1/settlement-runs",
        api_key=key,
        body={"settlement_date": PAST} if body is None else body,
        **kwargs,
    )


# -- starting a run --------------------------------------------------------------------------------


def start_of(day: str) -> str:
    """The start of a day in Shanghai (the `aws` fixture's zone), as the service writes moments."""
    moment = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def test_starting_a_day_that_is_over_is_202_and_starts_the_first_execution(api, keys, settlement):
    answer = start(api, keys["admin"])

    assert answer.status == 202, answer.raw
    body = answer.json
    assert (body["started"], body["run_id"], body["business_date"]) == (True, RUN, PAST)
    assert (body["settlement_date"], body["run_kind"], body["cutoff_at"]) == (PAST, "DAILY", start_of(PAST))
    assert (body["status"], body["attempt"]) == ("STARTING", 1)
    assert "execution_name" not in body and "kind" not in body
    name = f"settle-test-{PAST}-1"
    assert list(settlement.executions()) == [name]
    assert settlement.input_of(name) == {"settlement_date": PAST, "kind": "DAILY", "cutoff_at": start_of(PAST)}


def test_starting_the_same_date_again_is_200_with_the_same_run_and_no_second_execution(api, keys, settlement):
    first = start(api, keys["admin"])

    again = start(api, keys["admin"])

    assert again.status == 200, again.raw
    assert again.json == {**first.json, "started": False}
    assert list(settlement.executions()) == [f"settle-test-{PAST}-1"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (lambda: {}, "settlement_date"),
        (lambda: {"settlement_date": 20260301}, "settlement_date"),
        (lambda: {"settlement_date": None}, "settlement_date"),
        (lambda: {"settlement_date": "2026-2-1"}, "settlement_date"),
        (lambda: {"settlement_date": "2026-13-01"}, "settlement_date"),
        (lambda: {"settlement_date": ""}, "settlement_date"),
        (lambda: {"settlement_date": PAST, "kind": "weekly"}, "kind"),
        (lambda: {"settlement_date": PAST, "kind": None}, "kind"),
        # The name runs took before cut-offs (a business date D, once over): refused, not guessed at.
        (lambda: {"business_date": PAST}, "settlement_date"),
        (lambda: {"settlement_date": PAST, "tenant": "other"}, "tenant"),
    ],
    ids=["missing", "number", "null", "unpadded", "month-13", "empty", "kind", "null-kind", "old-name", "extra-field"],
)
def test_a_bad_start_is_400_naming_the_field_and_writes_nothing(api, keys, settlement, body, field):
    before = api.items()

    answer = start(api, keys["admin"], body())

    assert_problem(answer, 400, "validation_failed", field=field)
    assert api.items() == before
    assert settlement.executions() == {}


@pytest.mark.parametrize(
    "body",
    [
        lambda: {"settlement_date": (today() + timedelta(days=1)).isoformat()},  # cut at tomorrow's start
        lambda: {"settlement_date": (today() + timedelta(days=30)).isoformat(), "kind": "intraday"},
    ],
    ids=["tomorrow-daily", "next-month-intraday"],
)
def test_a_run_whose_cutoff_is_in_the_future_is_400_naming_settlement_date_and_writes_nothing(
    api, keys, settlement, body
):
    before = api.items()

    answer = start(api, keys["admin"], body())

    assert_problem(answer, 400, "settlement_cutoff_in_future", field="settlement_date")
    assert api.items() == before
    assert settlement.executions() == {}


def test_the_daily_run_of_today_may_start_its_cutoff_being_todays_first_moment(api, keys, settlement):
    day = today().isoformat()
    answer = start(api, keys["admin"], {"settlement_date": day, "kind": "daily"})
    assert answer.status == 202, answer.raw
    assert (answer.json["run_id"], answer.json["cutoff_at"]) == (rules.run_id(day), start_of(day))


def test_the_intraday_run_of_a_date_is_a_run_of_its_own_cut_at_the_t0_cutoff(api, keys, settlement):
    daily = start(api, keys["admin"])
    intraday = start(api, keys["admin"], {"settlement_date": PAST, "kind": "intraday"})

    assert (daily.status, intraday.status) == (202, 202), intraday.raw
    assert intraday.json["run_id"] == f"{RUN}_t0" and intraday.json["run_kind"] == "INTRADAY"
    # 22:00 in Shanghai (the test tenant's settlement_t0_cutoff) is 14:00Z.
    assert intraday.json["cutoff_at"] == f"{PAST}T14:00:00.000000Z"
    name = f"settle-test-{PAST}-t0-1"
    assert set(settlement.executions()) == {f"settle-test-{PAST}-1", name}
    assert settlement.input_of(name) == {
        "settlement_date": PAST, "kind": "INTRADAY", "cutoff_at": f"{PAST}T14:00:00.000000Z",
    }  # fmt: skip
    got = api.call("GET", f"/v1/settlement-runs/{RUN}_t0", api_key=keys["admin"])
    assert got.status == 200 and got.json["run_kind"] == "INTRADAY"


def test_a_start_refused_under_an_idempotency_key_keeps_no_record_of_the_key(api, keys, settlement):
    before = api.items()
    refused = start(
        api, keys["admin"], {"settlement_date": "2026-13-01"}, headers={"Idempotency-Key": "k-1"}
    )
    assert_problem(refused, 400, "validation_failed", field="settlement_date")
    assert api.items() == before

    # The key is free: a corrected request under it is answered, not replayed
    assert start(api, keys["admin"], headers={"Idempotency-Key": "k-1"}).status == 202


@pytest.mark.parametrize("who", ["issuer:brand-a", "merchant:m-001"])
def test_only_an_admin_may_start_or_read_a_run(api, keys, settlement, who):
    before = api.items()

    assert_problem(start(api, keys[who]), 403, "forbidden")
    assert api.items() == before and settlement.executions() == {}
    start(api, keys["admin"])
    assert_problem(api.call("GET", f"/v1/settlement-runs/{RUN}", api_key=keys[who]), 403, "forbidden")


def test_an_idempotency_key_replays_the_first_answer_and_starts_one_execution(api, keys, settlement):
    first = start(api, keys["admin"], headers={"Idempotency-Key": "settle-1"})

    again = start(api, keys["admin"], headers={"Idempotency-Key": "settle-1"})

    assert first.status == 202
    assert (again.status, again.raw) == (first.status, first.raw)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert list(settlement.executions()) == [f"settle-test-{PAST}-1"]


def test_a_failed_and_stopped_run_started_again_resumes_as_attempt_two(api, keys, settlement):
    # Given the first execution was stopped and its run recorded FAILED (the state machine's Catch)
    start(api, keys["admin"])
    settlement.stop(f"settle-test-{PAST}-1")
    store = SettlementStore(api.ddb, TABLE)
    assert store.update_run(RUN, {"status": "FAILED"})

    # When it is started again
    answer = start(api, keys["admin"])

    # Then it resumes: the next attempt, under the next execution name
    assert answer.status == 202, answer.raw
    assert (answer.json["started"], answer.json["attempt"], answer.json["status"]) == (True, 2, "STARTING")
    assert set(settlement.executions()) == {f"settle-test-{PAST}-1", f"settle-test-{PAST}-2"}
    assert settlement.executions()[f"settle-test-{PAST}-2"]["status"] == "RUNNING"
    assert store.run(RUN)["execution_name"] == f"settle-test-{PAST}-2"
    # And asking once more while attempt 2 runs starts nothing
    assert start(api, keys["admin"]).status == 200
    assert len(settlement.executions()) == 2


def test_a_recorded_run_whose_execution_never_started_is_started_when_asked_again(api, keys, settlement):
    # Given the request that recorded the run died before it started the execution
    SettlementStore(api.ddb, TABLE).create_run(
        {
            "run_id": RUN,
            "business_date": PAST,
            "status": "STARTING",
            "attempt": 1,
            "execution_name": f"settle-test-{PAST}-1",
            "requested_at": "2026-01-01T00:00:00Z",
        }
    )

    answer = start(api, keys["admin"])

    assert (answer.status, answer.json["started"], answer.json["attempt"]) == (202, True, 1)
    assert list(settlement.executions()) == [f"settle-test-{PAST}-1"]


def test_a_closed_run_is_returned_and_never_started_again(api, keys, settlement):
    start(api, keys["admin"])
    settlement.stop(f"settle-test-{PAST}-1")
    SettlementStore(api.ddb, TABLE).update_run(RUN, {"status": "CLOSED"})

    answer = start(api, keys["admin"])

    assert (answer.status, answer.json["started"], answer.json["status"]) == (200, False, "CLOSED")
    assert len(settlement.executions()) == 1


# -- reading a run ---------------------------------------------------------------------------------


def test_an_unknown_run_is_404(api, keys, settlement):
    answer = api.call("GET", f"/v1/settlement-runs/{rules.run_id('2020-01-01')}", api_key=keys["admin"])
    assert_problem(answer, 404, "settlement_run_not_found")


@pytest.mark.parametrize("run_id", ["stl_2026", "run-1", "stl_2026030x", "STL_20260301"])
def test_a_malformed_run_id_is_404(api, keys, settlement, run_id):
    assert_problem(
        api.call("GET", f"/v1/settlement-runs/{run_id}", api_key=keys["admin"]),
        404,
        "settlement_run_not_found",
    )


def seed_parties(api, count=7) -> list[str]:
    """A started run with `count` parties spread over several party buckets."""
    store = SettlementStore(api.ddb, TABLE)
    parties = [f"merchant:m-{i:03d}" for i in range(count)]
    for party in parties:
        store.ensure_party(RUN, party, created_at="2026-01-01T00:00:00Z")
    assert len({party_bucket(p) for p in parties}) > 2
    return parties


def test_a_runs_parties_are_paged_one_at_a_time_across_buckets_each_exactly_once(api, keys, settlement):
    start(api, keys["admin"])
    parties = seed_parties(api)

    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        answer = api.call("GET", f"/v1/settlement-runs/{RUN}", api_key=keys["admin"], query=query)
        assert answer.status == 200, answer.raw
        assert answer.json["run_id"] == RUN and len(answer.json["parties"]) <= 1
        seen += [p["party"] for p in answer.json["parties"]]
        cursor, pages = answer.json["next_cursor"], pages + 1
        if cursor is None:
            break
        assert pages <= PARTY_BUCKETS + len(parties)

    assert sorted(seen) == sorted(parties) and len(seen) == len(set(seen))
    assert seen == sorted(seen, key=lambda p: (party_bucket(p), p))  # bucket by bucket, in key order
    summary = api.call("GET", f"/v1/settlement-runs/{RUN}", api_key=keys["admin"]).json
    assert summary["next_cursor"] is None and len(summary["parties"]) == len(parties)
    assert summary["parties"][0] == {
        "party": summary["parties"][0]["party"],
        "settled": False,
        "currencies": [],
    }


def cursor_for(plain: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        cursor_for({"r": rules.run_id("2020-01-01"), "b": 0, "k": None}),  # another run's
        cursor_for({"r": RUN, "b": PARTY_BUCKETS, "k": None}),
        cursor_for({"r": RUN, "b": 0, "k": {"pk": "CAMPAIGN#c1", "sk": "CAMPAIGN"}}),
    ],
    ids=["garbage", "other-run", "bucket-out-of-range", "foreign-key"],
)
def test_a_cursor_this_run_did_not_issue_is_400(api, keys, settlement, cursor):
    start(api, keys["admin"])
    answer = api.call("GET", f"/v1/settlement-runs/{RUN}", api_key=keys["admin"], query={"cursor": cursor})
    assert_problem(answer, 400, "invalid_cursor", field="cursor")


def test_a_run_settled_by_its_execution_shows_its_totals_parties_and_statements(api, keys, settlement):
    # Given a started run whose execution runs every step against the simulated bank
    ledger = LedgerStore(api.ddb, TABLE)
    ledger.post(
        Journal(
            "jnl_rdm_1",
            "rdm_1",
            "REDEMPTION",
            "CNY",
            (Leg("platform", -300), Leg("brand:brand-a", -200), Leg("merchant:m-001", 500)),
            {},
        ),
        business_date=PAST,
        due_date=PAST,
        posted_at=f"{PAST}T10:00:00Z",
        extra={"redemption_id": "rdm_1"},
    )
    assert start(api, keys["admin"]).status == 202
    run_steps(api, settlement, execution=f"settle-test-{PAST}-1")

    # When an admin reads the run
    run = api.call("GET", f"/v1/settlement-runs/{RUN}", api_key=keys["admin"]).json

    # Then it is closed with its totals, and each party shows its transfer
    assert (run["status"], run["attempt"], run["batches"], run["next_cursor"]) == ("CLOSED", 1, 1, None)
    assert run["closed_at"] and run["opened_at"] and "execution_name" not in run
    [totals] = run["totals"]
    assert (totals["currency"], totals["payouts"], totals["collections"], totals["net"]) == (
        "CNY",
        500,
        500,
        0,
    )
    by_party = {p["party"]: p for p in run["parties"]}
    assert set(by_party) == {"platform", "brand:brand-a", "merchant:m-001"}
    [m1] = by_party["merchant:m-001"]["currencies"]
    assert (m1["decision"], m1["transfer"], m1["status"]) == ("PAYOUT", 500, "SENT")
    assert m1["instruction_id"] == rules.instruction_id(RUN, "merchant:m-001", "CNY")
    assert m1["channel_reference"].startswith("SIMBANK-") and by_party["merchant:m-001"]["settled"] is True
    [brand] = by_party["brand:brand-a"]["currencies"]
    assert (brand["decision"], brand["transfer"], brand["net"]) == ("COLLECTION", 200, -200)
    own = statement(api, keys["merchant:m-001"], "merchant:m-001").json
    assert own["totals"][0]["channel_reference"] == m1["channel_reference"]
    assert [x["amount"] for x in own["lines"]] == [500]
    assert statement(api, keys["issuer:brand-a"], "brand:brand-a").json["totals"][0]["net"] == -200


def test_a_page_of_one_party_still_tells_how_many_parties_the_run_has(api, keys, settlement):
    start(api, keys["admin"])
    seed_parties(api, count=5)
    SettlementStore(api.ddb, TABLE).update_run(RUN, {"party_count": 5, "batches": 1})  # as plan records it

    page = api.call("GET", f"/v1/settlement-runs/{RUN}", api_key=keys["admin"], query={"limit": "1"}).json

    assert len(page["parties"]) == 1 and page["batches"] == 1
    assert page["party_count"] == 5


def run_steps(api, settlement, *, execution):
    """What the state machine does for the execution, step by step, in-process."""
    api.ddb.create_table(**BANK.create_table_kwargs("coupons-test-bank"))
    bank = SimulatedBank(api.ddb, "coupons-test-bank")
    steps = SettlementSteps(
        SettlementStore(api.ddb, TABLE),
        RedemptionStore(api.ddb, TABLE),
        StatementStore(settlement.s3, BUCKET),
        lambda: bank,
        time_zone="Asia/Shanghai",
        minimums={"CNY": 100},
    )
    opened = steps.open(execution=execution, business_date=PAST)
    assert opened["proceed"] is True
    steps.await_clearing(PAST)
    for shard in opened["shards"]:
        steps.claim(RUN, PAST, shard)
    plan = steps.plan(RUN)
    for batch in json.loads(settlement.s3.get_object(Bucket=BUCKET, Key=plan["key"])["Body"].read()):
        steps.pay(RUN, PAST, batch["parties"])
        steps.write_statements(RUN, PAST, batch["parties"])
        steps.mark_settled(RUN, batch["parties"])
    steps.close(RUN, execution)


# -- statements ------------------------------------------------------------------------------------


def put_statement(party: str, net: int) -> dict:
    """A party's statement in the bucket, as the write_statements step writes it."""
    lines = [
        {
            "journal_id": "jnl_rdm_1",
            "currency": "CNY",
            "amount": net,
            "business_date": PAST,
            "source_kind": "REDEMPTION",
            "redemption_id": "rdm_1",
        }
    ]
    outcome = rules.decide("CNY", net, 1, 100)
    record = {
        "currencies": {
            "CNY": {
                "net": net,
                "lines": 1,
                "decision": outcome.decision.value,
                "transfer": outcome.transfer,
                "carried": outcome.carried,
                "channel_reference": "SIMBANK-X",
            }
        }
    }
    document = rules.statement({"run_id": RUN, "business_date": PAST}, party, lines, record)
    StatementStore(boto3.client("s3", region_name="eu-west-1"), BUCKET).put_statement(
        RUN, party, document, rules.statement_csv(document)
    )
    return document


def statement(api, key, party, run=RUN, accept=None):
    headers = {"Accept": accept} if accept else None
    return api.call("GET", f"/v1/settlement-runs/{run}/statements/{party}", api_key=key, headers=headers)


def test_an_admin_reads_any_partys_statement_as_json_or_csv(api, keys, settlement):
    document = put_statement("merchant:m-001", 1300)
    put_statement("brand:brand-a", -1300)

    as_json = statement(api, keys["admin"], "merchant:m-001")
    as_csv = statement(api, keys["admin"], "brand:brand-a", accept="text/csv")

    assert as_json.status == 200 and as_json.content_type.startswith("application/json")
    assert as_json.json == document
    assert as_csv.status == 200 and as_csv.content_type.startswith("text/csv"), as_csv.headers
    rows = as_csv.raw.splitlines()
    assert rows[0].startswith("run_id,party,currency,journal_id")
    assert len(rows) == 1 + 1 + 1  # header, one line, one TOTAL
    assert ",TOTAL," in rows[-1] and ",-1300," in rows[-1]


def test_a_merchant_reads_its_own_statement_and_not_another_merchants(api, keys, settlement):
    put_statement("merchant:m-001", 500)
    put_statement("merchant:m-002", 700)

    own = statement(api, keys["merchant:m-001"], "merchant:m-001")
    other = statement(api, keys["merchant:m-001"], "merchant:m-002")

    assert own.status == 200 and own.json["party"] == "merchant:m-001"
    assert_problem(other, 404, "account_not_found")
    assert_problem(statement(api, keys["merchant:m-001"], "brand:brand-a"), 404, "account_not_found")


def test_an_issuer_reads_its_brands_statement_only(api, keys, settlement):
    put_statement("brand:brand-a", -500)
    put_statement("brand:brand-b", -700)

    own = statement(api, keys["issuer:brand-a"], "brand:brand-a", accept="text/csv")

    assert own.status == 200 and own.content_type.startswith("text/csv")
    assert_problem(statement(api, keys["issuer:brand-a"], "brand:brand-b"), 404, "account_not_found")
    assert_problem(statement(api, keys["issuer:brand-a"], "platform"), 404, "account_not_found")


def test_a_statement_that_does_not_exist_is_404(api, keys, settlement):
    put_statement("merchant:m-001", 500)

    assert_problem(statement(api, keys["admin"], "merchant:m-009"), 404, "statement_not_found")
    assert_problem(
        statement(api, keys["merchant:m-001"], "merchant:m-001", run=rules.run_id("2020-01-01")),
        404,
        "statement_not_found",
    )
    assert_problem(
        statement(api, keys["admin"], "merchant:m-001", run="stl_x"), 404, "settlement_run_not_found"
    )


def test_a_statement_of_something_that_is_not_an_account_is_400(api, keys, settlement):
    answer = statement(api, keys["admin"], "nobody")
    assert_problem(answer, 400, "validation_failed", field="account")
    assert answer.content_type == PROBLEM
