"""The settlement steps on moto, driven one by one as the state machine would, against the simulated
bank: each party paid its net once whatever is retried, raced, lost or crashed; every posting claimed
by one run; amounts below the minimum carried into the next run."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from coupons.channels.simulated import SimulatedBank
from coupons.data.ledger import SHARDS, LedgerStore, shard_of, unsettled_partition
from coupons.data.redemptions import RedemptionStore, pending_index
from coupons.data.schema import BANK, MAIN
from coupons.data.settlement import SettlementStore
from coupons.data.statements import StatementStore
from coupons.domain import settlement as rules
from coupons.domain.ledger import Journal, Leg
from coupons.domain.settlement import ClearingBehind
from coupons.services.settlement import SettlementSteps, TransferRejected, TransfersIncomplete
from tests.dynamo_json import from_item, to_item
from tests.integration.moto_threads import OneRequestAtATime

MAIN_TABLE = "coupons-test-main"
BANK_TABLE = "coupons-test-bank"
BUCKET = "coupons-test-statements"
DAY = "2026-03-09"
RUN = rules.run_id(DAY)
MINIMUMS = {"CNY": 100}


class LambdaDied(Exception):
    """Stands for a step's Lambda dying between the bank's acceptance and our own write."""


def die():
    raise LambdaDied("killed after the bank accepted")


class FixedClock:
    """Always the same instant: a re-run that writes anything differs only where it really wrote."""

    def __init__(self, at=datetime(2026, 3, 10, 1, 0, tzinfo=UTC)):
        self.now = at

    def __call__(self):
        return self.now


class World:
    """The main table, the bank's table and the statements bucket, with the stores over them."""

    def __init__(self, ddb, s3, clock):
        self.ddb, self.s3, self.clock = ddb, s3, clock
        self.ledger = LedgerStore(ddb, MAIN_TABLE)
        self.store = SettlementStore(ddb, MAIN_TABLE)
        self.redemptions = RedemptionStore(ddb, MAIN_TABLE)
        self.statements = StatementStore(s3, BUCKET)
        self.bank = SimulatedBank(ddb, BANK_TABLE, crash=die)
        self.steps = self.make_steps()

    def make_steps(self, client=None, *, store=None, channel=None) -> SettlementSteps:
        return SettlementSteps(
            store or (SettlementStore(client, MAIN_TABLE) if client else self.store),
            self.redemptions,
            self.statements,
            lambda: channel or self.bank,
            time_zone="Asia/Shanghai",
            minimums=MINIMUMS,
            clock=self.clock,
        )

    # -- given -----------------------------------------------------------------------------

    def post(self, journal_id, legs, *, business_date=DAY, due_date=None, currency="CNY", kind="REDEMPTION"):
        self.ledger.post(
            Journal(
                journal_id=journal_id,
                source_id=journal_id.removeprefix("jnl_"),
                kind=kind,
                currency=currency,
                legs=tuple(Leg(account, amount) for account, amount in legs.items()),
                party_shares={},
            ),
            business_date=business_date,
            due_date=due_date or business_date,
            posted_at=f"{business_date}T12:00:00Z",
            extra={"redemption_id": journal_id.removeprefix("jnl_"), "merchant_id": "m1"},
        )

    # -- when ------------------------------------------------------------------------------

    def open(self, day=DAY, execution="exec-1", kind="DAILY"):
        return self.steps.open(execution=execution, settlement_date=day, kind=kind)

    def claim_all(self, day=DAY, *, run=None, cutoff_at=None):
        run = run or rules.run_id(day)
        return [self.steps.claim(run, day, shard, cutoff_at=cutoff_at) for shard in range(SHARDS)]

    def batches(self, day=DAY, *, run=None):
        plan = self.steps.plan(run or rules.run_id(day))
        body = self.s3.get_object(Bucket=plan["bucket"], Key=plan["key"])["Body"].read()
        return json.loads(body)

    def settle(self, day=DAY, execution="exec-1", kind="DAILY"):
        """Every step of one execution, in the state machine's order, the run's cut-off passed on as
        the definition passes it (a posting without an event time is taken whatever the cut-off)."""
        opened = self.open(day, execution, kind)
        assert opened["proceed"] is True, opened
        run = opened["run_id"]
        self.steps.await_clearing(day, cutoff_at=opened["cutoff_at"])
        self.claim_all(day, run=run, cutoff_at=opened["cutoff_at"])
        for batch in self.batches(day, run=run):
            self.steps.pay(run, day, batch["parties"])
            self.steps.write_statements(run, day, batch["parties"])
            self.steps.mark_settled(run, batch["parties"])
        return self.steps.close(run, execution)

    # -- then ------------------------------------------------------------------------------

    def accepted(self):
        return [(r.instruction_id, r.direction.value, r.amount, r.currency) for r in self.bank.accepted()]

    def paid(self, run=RUN):
        """{party: signed amount the bank moved} for one run (+ paid out, − collected)."""
        moved = {}
        for r in self.bank.accepted():
            for party in self.parties(run):
                if r.instruction_id == rules.instruction_id(run, party, r.currency):
                    moved[party] = r.amount if r.direction.value == "PAYOUT" else -r.amount
        return moved

    def parties(self, run=RUN):
        return sorted(p["party"] for p in self.store.parties(run))

    def transfer(self, party, run=RUN, currency="CNY"):
        return self.store.party(run, party)["currencies"][currency]

    def postings(self):
        """The cleared postings (what runs settle); a transfer's own journal is settled at birth."""
        return [
            i
            for i in self.table()
            if i["pk"].startswith("ENTRIES#") and i["source_kind"] not in ("PAYOUT", "COLLECTION")
        ]

    def transfer_postings(self):
        return [
            i for i in self.table() if i["pk"].startswith("ENTRIES#") and i["source_kind"] in ("PAYOUT", "COLLECTION")
        ]

    def table(self, name=MAIN_TABLE):
        items = []
        kwargs = {"TableName": name, "ConsistentRead": True}
        while True:
            page = self.ddb.scan(**kwargs)
            items += [from_item(i) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return sorted(items, key=lambda i: (i["pk"], i["sk"]))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def objects(self):
        listed = self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return {o["Key"]: self.s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}

    def snapshot(self):
        return self.table(), self.table(BANK_TABLE), self.objects()

    def statement(self, party, run=RUN, fmt="json"):
        return self.statements.statement(run, party, fmt)


@contextmanager
def moto_world():
    """The world on a fresh moto: the tables and the bucket, empty."""
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-west-1")
        ddb.create_table(**MAIN.create_table_kwargs(MAIN_TABLE))
        ddb.create_table(**BANK.create_table_kwargs(BANK_TABLE))
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield World(ddb, s3, FixedClock())


@pytest.fixture
def world():
    with moto_world() as made:
        yield made


def post_the_day(world):
    """A T+1 redemption of the day before, two redemptions of the day (one partly reversed), a gift card,
    and a T+2 redemption not due yet. Nets on DAY: platform −780, brand:b1 −3020, merchant:m1 +1300,
    merchant:m2 +2500 (the T+2 journal's 50 waits)."""
    world.post(
        "jnl_rdm_1",
        {"platform": -300, "brand:b1": -200, "merchant:m1": 500},
        business_date="2026-03-08",
        due_date=DAY,
    )
    world.post("jnl_rdm_2", {"platform": -600, "brand:b1": -400, "merchant:m1": 1000})
    world.post("jnl_rvs_1", {"platform": 120, "brand:b1": 80, "merchant:m1": -200}, kind="REVERSAL")
    world.post("jnl_rdm_3", {"brand:b1": -2500, "merchant:m2": 2500})
    world.post("jnl_rdm_4", {"platform": -50, "merchant:m2": 50}, due_date="2026-03-11")


NETS = {"platform": -780, "brand:b1": -3020, "merchant:m1": 1300, "merchant:m2": 2500}


def ready_to_pay(world):
    """The day posted, its run opened, claimed and planned: the one batch the pay step is given."""
    post_the_day(world)
    world.open()
    world.claim_all()
    [batch] = world.batches()
    return batch


# -- a full run ------------------------------------------------------------------------------------


def test_a_full_run_pays_or_collects_each_partys_net_once(world):
    post_the_day(world)

    closed = world.settle()

    assert world.paid() == NETS
    assert len(world.accepted()) == len(NETS)
    assert sorted(world.accepted()) == sorted(
        (rules.instruction_id(RUN, p, "CNY"), "PAYOUT" if n > 0 else "COLLECTION", abs(n), "CNY")
        for p, n in NETS.items()
    )
    [totals] = closed["totals"]
    assert (totals["payouts"], totals["collections"], totals["carried_forward"], totals["net"]) == (
        3800,
        3800,
        0,
        0,
    )
    assert (totals["payout_count"], totals["collection_count"], closed["party_count"]) == (2, 2, 4)
    assert world.store.run(RUN)["status"] == "CLOSED"


def test_each_statement_in_s3_sums_to_the_partys_transfer(world):
    post_the_day(world)

    world.settle()

    for party, net in NETS.items():
        document = json.loads(world.statement(party))
        [total] = document["totals"]
        assert sum(line["amount"] for line in document["lines"]) == total["net"] == net
        assert total["transfer"] == abs(net) and total["carried_forward"] == 0
        assert total["channel_reference"].startswith("SIMBANK-")
        csv_total = [r for r in world.statement(party, fmt="csv").splitlines() if ",TOTAL," in r]
        assert len(csv_total) == 1 and f",{net}," in csv_total[0]
    assert [x["journal_id"] for x in json.loads(world.statement("merchant:m1"))["lines"]] == [
        "jnl_rdm_1",
        "jnl_rdm_2",
        "jnl_rvs_1",
    ]


def test_settled_postings_carry_the_run_and_a_posting_not_due_stays_unsettled_in_the_index(world):
    post_the_day(world)

    world.settle()

    for posting in world.postings():
        if posting["journal_id"] == "jnl_rdm_4":  # due 2026-03-11
            assert posting["settled"] is False and "run_id" not in posting
            assert posting["gsi1pk"].startswith("UNSETTLED#")
        else:
            assert posting["settled"] is True and posting["run_id"] == RUN
            assert "gsi1pk" not in posting and posting["settled_at"]


# -- claims are exclusive --------------------------------------------------------------------------


def test_two_runs_claiming_concurrently_each_take_a_posting_at_most_once_between_them(world):
    # Given 24 journals due on DAY: both the run of DAY and the run of the day after cover them
    for i in range(24):
        world.post(f"jnl_rdm_{i:03d}", {"platform": -(i + 1), f"merchant:m{i % 5}": i + 1})
    later = "2026-03-10"
    world.open(DAY, "exec-a")
    world.open(later, "exec-b")
    tasks = [(day, shard) for shard in range(SHARDS) for day in (DAY, later)]
    start = threading.Barrier(8)
    shared = OneRequestAtATime(world.ddb)

    def claim(task):
        day, shard = task
        if task in tasks[:8]:
            start.wait()
        return day, world.make_steps(shared).claim(rules.run_id(day), day, shard)

    # When both claim every shard at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(claim, tasks))

    # Then every posting belongs to exactly one run, and its line exists under that run only
    postings = world.postings()
    assert len(postings) == 48
    claimed = defaultdict(int)
    for day, result in results:
        claimed[day] += result["claimed"]
    assert claimed[DAY] + claimed[later] == 48
    assert sum(r["taken_by_other_runs"] for _, r in results) <= 48  # refusals: one per lost race
    for posting in postings:
        owner = posting["run_id"]
        assert owner in (RUN, rules.run_id(later))
        for run in (RUN, rules.run_id(later)):
            line = world.ddb.get_item(
                TableName=MAIN_TABLE,
                Key=to_item(
                    {"pk": f"SETTLEMENT#{run}#LINES#{posting['account']}", "sk": posting["journal_id"]}
                ),
                ConsistentRead=True,
            ).get("Item")
            assert (line is not None) == (run == owner), (posting["journal_id"], posting["account"], run)
    lines = [i for i in world.table() if i.get("kind") == "SETTLEMENT_LINE"]
    assert len(lines) == 48


def test_after_racing_claims_both_runs_settle_and_each_party_gets_its_postings_exactly_once(world):
    for i in range(12):
        world.post(f"jnl_rdm_{i:03d}", {"platform": -(40 * i + 40), f"merchant:m{i % 3}": 40 * i + 40})
    later = "2026-03-10"
    world.open(DAY, "exec-a")
    world.open(later, "exec-b")
    shared = OneRequestAtATime(world.ddb)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda t: world.make_steps(shared).claim(rules.run_id(t[0]), t[0], t[1]),
                [(day, shard) for shard in range(SHARDS) for day in (DAY, later)],
            )
        )

    # When each run completes its remaining steps
    for day, execution in ((DAY, "exec-a"), (later, "exec-b")):
        run = rules.run_id(day)
        for batch in world.batches(day):
            world.steps.pay(run, day, batch["parties"])
            world.steps.write_statements(run, day, batch["parties"])
            world.steps.mark_settled(run, batch["parties"])
        world.steps.close(run, execution)

    # Then per party, what both runs moved plus what they carried is the sum of its postings
    owed = defaultdict(int)
    for posting in world.postings():
        owed[posting["account"]] += posting["amount"]
        assert posting["settled"] is True
    moved = defaultdict(int)
    for run in (RUN, rules.run_id(later)):
        for party, amount in world.paid(run).items():
            moved[party] += amount
        for record in world.store.parties(run):
            for outcome in record["currencies"].values():
                moved[record["party"]] += outcome["carried"]
    assert dict(moved) == dict(owed)
    assert len(world.accepted()) == len({a[0] for a in world.accepted()})


def test_a_posting_an_index_still_lists_after_another_run_claimed_it_is_counted_taken_and_gets_no_line(world):
    # Given run B read a page of unsettled postings, then run A claimed them first
    world.post("jnl_rdm_1", {"platform": -500, "merchant:m1": 500})
    shard = shard_of("jnl_rdm_1")
    later = rules.run_id("2026-03-10")
    stale = next(world.store.unsettled(shard, "2026-03-10"))
    assert world.store.claim(RUN, stale, claimed_at="2026-03-10T01:00:00Z") == (2, 0)

    # When B claims its stale page
    outcome = world.store.claim(later, stale, claimed_at="2026-03-10T01:00:01Z")

    # Then B took nothing and wrote no line; A still owns both postings
    assert outcome == (0, 2)
    assert world.store.lines(later, "merchant:m1") == [] and world.store.lines(later, "platform") == []
    assert {p["run_id"] for p in world.postings()} == {RUN}
    # The same stale page claimed again by A (an index that lags, a retry) counts as neither
    assert world.store.claim(RUN, stale, claimed_at="2026-03-10T01:00:02Z") == (0, 0)
    assert [x["journal_id"] for x in world.store.lines(RUN, "merchant:m1")] == ["jnl_rdm_1"]


def test_a_claim_retried_after_it_finished_claims_nothing_more(world):
    post_the_day(world)
    world.open()
    first = world.claim_all()

    again = world.claim_all()

    assert sum(r["claimed"] for r in first) == 11
    assert sum(r["claimed"] + r["taken_by_other_runs"] for r in again) == 0


# -- every step is safe to run again ---------------------------------------------------------------


def test_running_every_step_of_a_closed_run_again_changes_nothing_and_sends_nothing_twice(world):
    post_the_day(world)
    world.settle()
    before = world.snapshot()

    # When every step runs again (Lambda retries, a replayed execution)
    assert world.open()["proceed"] is False
    world.steps.await_clearing(DAY)
    world.claim_all()
    for batch in world.batches():
        world.steps.pay(RUN, DAY, batch["parties"])
        world.steps.write_statements(RUN, DAY, batch["parties"])
        world.steps.mark_settled(RUN, batch["parties"])
    world.steps.close(RUN, "exec-1")

    assert world.snapshot() == before
    assert len(world.accepted()) == len(NETS)


def test_each_step_run_twice_in_a_row_pays_each_party_once(world):
    post_the_day(world)

    assert world.open()["proceed"] is True
    assert world.open()["proceed"] is True  # the open Lambda retried: still this execution's run
    world.claim_all()
    world.claim_all()
    batches = world.batches()
    assert world.batches() == batches
    for batch in batches:
        for step in (world.steps.pay, world.steps.write_statements):
            step(RUN, DAY, batch["parties"])
            step(RUN, DAY, batch["parties"])
        world.steps.mark_settled(RUN, batch["parties"])
        world.steps.mark_settled(RUN, batch["parties"])
    first = world.steps.close(RUN, "exec-1")
    assert world.steps.close(RUN, "exec-1") == first

    assert world.paid() == NETS and len(world.accepted()) == len(NETS)
    assert all(p["settled"] for p in world.postings() if p["journal_id"] != "jnl_rdm_4")


# -- the bank fails ------------------------------------------------------------------------------


def test_a_bank_failure_for_one_party_names_it_and_the_others_are_sent(world):
    batch = ready_to_pay(world)
    world.bank.inject("merchant:m1", "fail")

    with pytest.raises(TransfersIncomplete, match="merchant:m1 CNY") as incomplete:
        world.steps.pay(RUN, DAY, batch["parties"])

    assert "merchant:m2" not in str(incomplete.value)
    assert {p: world.transfer(p)["status"] for p in NETS} == {
        "platform": "SENT",
        "brand:b1": "SENT",
        "merchant:m1": "INSTRUCTED",
        "merchant:m2": "SENT",
    }
    assert "merchant:m1" not in world.paid()
    with pytest.raises(TransfersIncomplete, match="merchant:m1"):
        world.steps.mark_settled(RUN, batch["parties"])  # never settle what was not paid

    # When the state machine retries the step
    assert world.steps.pay(RUN, DAY, batch["parties"]) == {"parties": 4, "sent": 1}

    assert world.paid() == NETS and len(world.accepted()) == len(NETS)
    assert world.transfer("merchant:m1")["status"] == "SENT"


def test_a_lost_acknowledgement_is_recovered_on_retry_through_status_with_one_bank_record(world):
    batch = ready_to_pay(world)
    world.bank.inject("merchant:m2", "timeout")

    with pytest.raises(TransfersIncomplete, match="merchant:m2 CNY: ChannelTimeout"):
        world.steps.pay(RUN, DAY, batch["parties"])
    assert world.transfer("merchant:m2")["status"] == "INSTRUCTED"
    assert world.paid()["merchant:m2"] == 2500  # the bank did it; we do not know yet

    world.bank.inject("merchant:m2", "fail", times=5)  # a resend would fail: only status() can tell
    world.steps.pay(RUN, DAY, batch["parties"])

    transfer = world.transfer("merchant:m2")
    assert transfer["status"] == "SENT" and transfer["channel_reference"].startswith("SIMBANK-")
    ids = [a[0] for a in world.accepted()]
    assert ids.count(rules.instruction_id(RUN, "merchant:m2", "CNY")) == 1 and len(ids) == len(NETS)


def test_a_step_that_dies_after_the_bank_accepted_is_recovered_on_retry_with_one_bank_record(world):
    batch = ready_to_pay(world)
    world.bank.inject("brand:b1", "crash")

    with pytest.raises(LambdaDied):
        world.steps.pay(RUN, DAY, batch["parties"])
    assert world.transfer("brand:b1")["status"] == "INSTRUCTED"

    # When the retried step finds INSTRUCTED, it asks the bank rather than sending blindly
    world.bank.inject("brand:b1", "fail", times=5)
    world.steps.pay(RUN, DAY, batch["parties"])
    world.steps.write_statements(RUN, DAY, batch["parties"])
    world.steps.mark_settled(RUN, batch["parties"])
    world.steps.close(RUN, "exec-1")

    assert world.transfer("brand:b1")["status"] == "SENT"
    assert world.paid() == NETS and len(world.accepted()) == len(NETS)


def test_a_transfer_the_bank_rejects_fails_the_step_at_once_naming_the_party(world):
    batch = ready_to_pay(world)
    world.bank.inject("merchant:m2", "reject")

    with pytest.raises(TransferRejected, match="merchant:m2 CNY"):
        world.steps.pay(RUN, DAY, batch["parties"])

    assert world.paid() == {p: n for p, n in NETS.items() if p != "merchant:m2"}
    assert world.transfer("merchant:m2")["status"] == "INSTRUCTED"  # resumable once the cause is fixed


# -- failures and resumes --------------------------------------------------------------------------


def test_a_failure_is_recorded_on_the_run_with_its_cause_cut_to_2000_characters(world):
    world.open()

    world.steps.record_failure(RUN, "exec-1", "ClearingBehind", "x" * 5000)

    run = world.store.run(RUN)
    assert run["status"] == "FAILED" and run["error"]["error"] == "ClearingBehind"
    assert len(run["error"]["cause"]) == 2000


def test_a_failure_of_an_older_attempt_does_not_mark_the_resumed_run_failed(world):
    # Given attempt 1 failed and the API resumed the run as attempt 2, which opened it
    world.open(execution="exec-1")
    world.steps.record_failure(RUN, "exec-1", "States.Timeout", "")
    world.store.update_run(RUN, {"status": "STARTING", "attempt": 2, "execution_name": "exec-2"})
    assert world.open(execution="exec-2")["attempt"] == 2

    # When attempt 1's Catch reports late
    world.steps.record_failure(RUN, "exec-1", "States.Timeout", "late")

    # Then attempt 2 still owns a running run, and attempt 1 cannot close it either
    assert world.store.run(RUN)["status"] == "RUNNING"
    world.steps.close(RUN, "exec-1")
    assert world.store.run(RUN)["status"] == "RUNNING"


def test_a_failure_after_close_keeps_the_run_closed_and_records_the_lost_event(world):
    # Given a run that closed, whose SettlementRunCompleted event then failed past its retries
    post_the_day(world)
    world.settle(execution="exec-1")

    world.steps.record_failure(RUN, "exec-1", "EventBridge.Unavailable", "down")

    # Then the money stays settled: a resume would have nothing to do, and the failure is on record
    run = world.store.run(RUN)
    assert run["status"] == "CLOSED"
    assert run["completion_event_error"] == {"error": "EventBridge.Unavailable", "cause": "down"}


def test_a_resumed_run_finishes_what_the_failed_attempt_left_and_pays_nobody_twice(world):
    # Given attempt 1 paid some parties, then failed on the bank
    post_the_day(world)
    world.open(execution="exec-1")
    world.claim_all()
    [batch] = world.batches()
    world.bank.inject("brand:b1", "fail", times=3)
    for _ in range(3):  # the state machine's retries, all failing
        with pytest.raises(TransfersIncomplete):
            world.steps.pay(RUN, DAY, batch["parties"])
    world.steps.record_failure(RUN, "exec-1", "TransfersIncomplete", "brand:b1 CNY")

    # When the run is resumed as attempt 2 and runs every step from the start
    world.store.update_run(RUN, {"status": "STARTING", "attempt": 2, "execution_name": "exec-2"})
    closed = world.settle(execution="exec-2")

    # Then everyone is paid once, and the run closes
    assert world.paid() == NETS and len(world.accepted()) == len(NETS)
    assert closed["party_count"] == 4 and world.store.run(RUN)["status"] == "CLOSED"


# -- carry forward ---------------------------------------------------------------------------------


def test_a_party_below_the_minimum_carries_its_net_into_the_next_days_run_which_pays_the_sum(world):
    # Given merchant:m3 is owed 60 on DAY (below the minimum of 100) and 70 the day after
    world.post("jnl_rdm_a", {"platform": -60, "merchant:m3": 60})
    world.post("jnl_rdm_b", {"platform": -1000, "merchant:m1": 1000})
    world.post("jnl_rdm_c", {"platform": -70, "merchant:m3": 70}, business_date="2026-03-10")
    world.post("jnl_rdm_d", {"platform": -500, "merchant:m1": 500}, business_date="2026-03-10")

    # When DAY is settled
    closed = world.settle()

    # Then m3 gets no transfer but a CARRY item due the next day; the others are paid in full
    assert world.paid() == {"platform": -1060, "merchant:m1": 1000}
    m3 = world.transfer("merchant:m3")
    assert (m3["decision"], m3["status"], m3["transfer"], m3["carried"]) == (
        "CARRY_FORWARD",
        "NO_TRANSFER",
        0,
        60,
    )
    [carry] = [i for i in world.table() if i["pk"] == "CARRY#merchant:m3"]
    assert (carry["amount"], carry["due_date"], carry["carried_from"]) == (60, "2026-03-10", RUN)
    assert carry["gsi1pk"].startswith("UNSETTLED#") and carry["gsi1sk"].startswith("2026-03-10#")
    [t] = closed["totals"]
    assert (t["payouts"], t["collections"], t["carried_forward"]) == (1000, 1060, 60)
    assert t["payouts"] - t["collections"] + t["carried_forward"] == t["net"] == 0
    assert json.loads(world.statement("merchant:m3"))["totals"][0]["carried_forward"] == 60
    # Claiming DAY again does not take back what DAY carried out (it is due the day after)
    world.claim_all()
    assert [x["journal_id"] for x in world.store.lines(RUN, "merchant:m3")] == ["jnl_rdm_a"]

    # When the next day is settled
    later = "2026-03-10"
    world.settle(later, "exec-2")

    # Then m3 is paid 60 + 70 in one transfer, and its statement shows the carried line
    assert world.paid(rules.run_id(later)) == {"platform": -570, "merchant:m1": 500, "merchant:m3": 130}
    document = json.loads(world.statement("merchant:m3", rules.run_id(later)))
    assert [(x["source_kind"], x["amount"], x["business_date"]) for x in document["lines"]] == [
        ("CARRY_FORWARD", 60, DAY),
        ("REDEMPTION", 70, "2026-03-10"),
    ]
    assert (document["totals"][0]["net"], document["totals"][0]["transfer"]) == (130, 130)
    [carry] = [i for i in world.table() if i["pk"] == "CARRY#merchant:m3"]
    assert carry["settled"] is True and carry["run_id"] == rules.run_id(later)
    assert not any(
        i["pk"].startswith("CARRY#") and i["sk"].startswith(rules.run_id(later)) for i in world.table()
    )


# -- waiting for clearing --------------------------------------------------------------------------


def put_uncleared_redemption(world, redemption_id, business_date):
    """A redemption item as the redemption code writes it: in the clearing-pending index (gsi2)."""
    world.ddb.put_item(
        TableName=MAIN_TABLE,
        Item=to_item(
            {
                "pk": f"REDEMPTION#{redemption_id}",
                "sk": "REDEMPTION",
                "kind": "REDEMPTION",
                "redemption_id": redemption_id,
                "business_date": business_date,
                **pending_index(redemption_id, business_date),
            }
        ),
    )


def test_await_clearing_waits_while_a_redemption_of_the_date_is_uncleared_and_passes_after(world):
    put_uncleared_redemption(world, "rdm_late", DAY)
    put_uncleared_redemption(world, "rdm_next_day", "2026-03-10")  # not this run's business

    with pytest.raises(ClearingBehind, match="rdm_late") as behind:
        world.steps.await_clearing(DAY)
    assert "rdm_next_day" not in str(behind.value)

    # When clearing posts its journal (the same transaction takes it out of the pending index)
    world.ledger.post(
        Journal(
            "jnl_rdm_late",
            "rdm_late",
            "REDEMPTION",
            "CNY",
            (Leg("platform", -10), Leg("merchant:m1", 10)),
            {},
        ),
        business_date=DAY,
        due_date=DAY,
        posted_at=f"{DAY}T23:59:00Z",
        extra={},
        source_key={"pk": "REDEMPTION#rdm_late", "sk": "REDEMPTION"},
    )

    assert world.steps.await_clearing(DAY) == {"cleared_through": DAY}
    with pytest.raises(ClearingBehind):
        world.steps.await_clearing("2026-03-10")


# -- open ------------------------------------------------------------------------------------------


def test_a_second_execution_for_a_date_that_has_a_run_does_not_proceed(world):
    first = world.open(execution="exec-1")

    second = world.open(execution="exec-2")

    assert (first["proceed"], first["attempt"], first["run_id"]) == (True, 1, RUN)
    assert first["shards"] == list(range(SHARDS))
    assert (second["proceed"], second["status"]) == (False, "RUNNING")
    assert world.store.run(RUN)["execution_name"] == "exec-1"


def test_a_closed_run_does_not_proceed_even_for_its_own_execution(world):
    post_the_day(world)
    world.settle()

    assert world.open(execution="exec-1") == {
        "run_id": RUN,
        "business_date": DAY,
        "proceed": False,
        "status": "CLOSED",
    }
    assert world.open(execution="exec-9")["proceed"] is False


def test_a_schedule_opens_the_run_of_the_day_it_fires_on_in_the_tenants_zone_cut_at_its_start(world):
    # Issue #14: the daily run at 02:00 on X settles X (T+1 paid the next day); before, the day before.
    opened = world.steps.open(execution="sched-1", scheduled_at="2026-03-09T16:30:00Z")  # 00:30 on the 10th

    assert (opened["run_id"], opened["business_date"], opened["proceed"]) == ("stl_20260310", "2026-03-10", True)
    assert opened["cutoff_at"] == "2026-03-09T16:00:00.000000Z"  # 00:00 on the 10th in Shanghai


def test_a_run_the_api_recorded_is_opened_by_the_execution_it_named(world):
    # Given the API recorded the run (STARTING) naming the execution it started
    world.store.create_run(
        {
            "run_id": RUN,
            "business_date": DAY,
            "status": "STARTING",
            "attempt": 2,
            "execution_name": "settle-test-2026-03-09-2",
            "requested_at": "2026-03-10T01:00:00Z",
        }
    )

    opened = world.open(execution="settle-test-2026-03-09-2")

    assert (opened["proceed"], opened["attempt"]) == (True, 2)
    assert world.store.run(RUN)["status"] == "RUNNING"
    assert world.open(execution="settle-test-2026-03-09-1")["proceed"] is False


def test_an_unsettled_index_partition_is_empty_once_everything_due_is_claimed(world):
    post_the_day(world)
    world.open()
    world.claim_all()

    left = []
    for shard in range(SHARDS):
        page = world.ddb.query(
            TableName=MAIN_TABLE,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": {"S": unsettled_partition(shard)}},
        )
        left += [from_item(i)["journal_id"] for i in page["Items"]]
    assert sorted(left) == ["jnl_rdm_4", "jnl_rdm_4"]
    assert world.parties() == sorted(NETS)


def test_a_run_with_nothing_due_closes_empty_and_leaves_the_next_days_postings_alone(world):
    world.post("jnl_rdm_x", {"platform": -500, "merchant:m1": 500}, business_date="2026-03-10")

    closed = world.settle()

    assert (closed["party_count"], closed["totals"]) == (0, [])
    assert world.accepted() == []
    assert all("run_id" not in p for p in world.postings())
