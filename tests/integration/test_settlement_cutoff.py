"""A run's cut-off (issue #14, point 2): postings carry their event's time
(clearing writes the redemption's redeemed_at / the reversal's reversed_at), and the claim step given
a cut-off takes only postings whose event happened before it; the rest stay in the unsettled index
for a later run. In Berlin on the day the clocks go forward (2026-03-29: 22:00 local is 20:00Z)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from coupons.data.ledger import SHARDS
from coupons.data.redemptions import pending_index
from coupons.domain import settlement as rules
from coupons.domain import timeline
from coupons.domain.ledger import Journal, Leg
from coupons.domain.settlement import ClearingBehind
from coupons.services.settlement import SettlementSteps
from tests.dynamo_json import to_item
from tests.integration.test_clearing_handler import RDM, store
from tests.integration.test_clearing_redelivery import batch, redemption
from tests.integration.test_settlement_steps import MAIN_TABLE
from tests.integration.test_settlement_steps import world as world  # noqa: F401  (fixture)

X = "2026-03-29"
ZONE = "Europe/Berlin"


def post_t0(world, journal_id: str, event_at: str, merchant: str) -> None:
    world.ledger.post(
        Journal(
            journal_id=journal_id,
            source_id=journal_id.removeprefix("jnl_"),
            kind="REDEMPTION",
            currency="CNY",
            legs=(Leg("brand:b1", -500), Leg(merchant, 500)),
            party_shares={},
        ),
        business_date=X,
        due_date=X,  # T+0
        posted_at=event_at,
        extra={"redemption_id": journal_id.removeprefix("jnl_"), "merchant_id": merchant, "event_at": event_at},
    )


def claimed(world, run: str, day: str, cutoff: timeline.Cutoff) -> set[str]:
    world.steps.open(execution=f"exec-{run}", business_date=day)
    for shard in range(SHARDS):
        world.steps.claim(run, day, shard, cutoff_at=cutoff.at.isoformat())
    return {line["journal_id"] for p in world.parties(run) for line in world.store.lines(run, p)}


def test_a_t0_redemption_before_the_intraday_cutoff_is_claimed_and_one_at_it_waits_for_the_next_run(world):
    cutoff = timeline.intraday_cutoff(X, "22:00", ZONE)
    assert cutoff.at.isoformat() == "2026-03-29T20:00:00+00:00"
    post_t0(world, "jnl_rdm_before", "2026-03-29T19:59:59Z", "merchant:m1")  # 21:59:59 local
    post_t0(world, "jnl_rdm_at", "2026-03-29T20:00:00Z", "merchant:m2")  # 22:00:00 local

    assert claimed(world, rules.run_id(X), X, cutoff) == {"jnl_rdm_before"}
    # The daily run of X + 1 (cut at the start of 2026-03-30, 22:00Z) takes what the intraday run left.
    nxt = "2026-03-30"
    daily = timeline.daily_cutoff(nxt, ZONE)
    assert daily.at.isoformat() == "2026-03-29T22:00:00+00:00"
    assert claimed(world, rules.run_id(nxt), nxt, daily) == {"jnl_rdm_at"}


def test_clearing_writes_the_events_time_on_every_posting(clearing, ledger, aws):
    assert clearing(store(aws, batch(redemption(RDM, 1000)))) == []
    postings = [i for i in aws.scan(TableName="coupons-test-main")["Items"] if i["pk"]["S"].startswith("ENTRIES#")]
    assert postings and {p["event_at"]["S"] for p in postings} == {"2026-11-24T03:00:00Z"}


# -- runs keyed by settlement date, in Berlin (acme), through open → await_clearing → claim → close ----


def berlin(world):
    """The steps as acme's functions build them: Europe/Berlin, T+0 cut-off 22:00."""
    world.steps = SettlementSteps(
        world.store, world.redemptions, world.statements, lambda: world.bank,
        time_zone=ZONE, minimums={"EUR": 100}, clock=world.clock, t0_cutoff="22:00",
    )  # fmt: skip
    return world


def post(world, journal_id: str, event_at: str, business_date: str, due_date: str, merchant: str) -> None:
    world.ledger.post(
        Journal(journal_id, journal_id.removeprefix("jnl_"), "REDEMPTION", "EUR",
                (Leg("brand:b1", -500), Leg(merchant, 500)), {}),
        business_date=business_date,
        due_date=due_date,
        posted_at=event_at,
        extra={"redemption_id": journal_id.removeprefix("jnl_"), "merchant_id": merchant, "event_at": event_at},
    )  # fmt: skip


def paid_merchants(world, run: str) -> set[str]:
    return {p for p in world.parties(run) if p.startswith("merchant:") and world.transfer(p, run, "EUR")["transfer"]}


@pytest.mark.parametrize(
    ("x", "last_second_before", "midnight"),
    [
        ("2026-03-11", "2026-03-10T22:59:59Z", "2026-03-10T23:00:00Z"),  # an ordinary winter day (CET)
        ("2026-03-29", "2026-03-28T22:59:59Z", "2026-03-28T23:00:00Z"),  # 23 hours: the clocks go forward
        ("2026-10-26", "2026-10-25T22:59:59Z", "2026-10-25T23:00:00Z"),  # after the 25-hour day (CET again)
        ("2026-10-25", "2026-10-24T21:59:59Z", "2026-10-24T22:00:00Z"),  # 25 hours: the clocks go back
    ],
    ids=["winter", "spring-forward", "after-fall-back", "fall-back"],
)
def test_the_daily_run_of_x_pays_t1_of_the_day_before_up_to_midnight_and_not_a_second_later(
    world, x, last_second_before, midnight
):
    berlin(world)
    day_before = (date.fromisoformat(x) - timedelta(days=1)).isoformat()
    post(world, "jnl_rdm_last", last_second_before, day_before, x, "merchant:m1")  # 23:59:59 local on X − 1
    post(world, "jnl_rdm_midnight", midnight, x, rules.next_day(x), "merchant:m2")  # 00:00:00 local on X: due X + 1

    closed = world.settle(x, execution="exec-daily")

    assert closed["run_id"] == rules.run_id(x)
    assert world.store.run(rules.run_id(x))["cutoff_at"] == midnight.replace("Z", ".000000Z")
    assert paid_merchants(world, rules.run_id(x)) == {"merchant:m1"}  # T+1 paid the next day
    world.settle(rules.next_day(x), execution="exec-next")
    assert paid_merchants(world, rules.run_id(rules.next_day(x))) == {"merchant:m2"}


@pytest.mark.parametrize(
    ("x", "cutoff"),
    [("2026-03-11", "2026-03-11T21:00:00Z"), ("2026-03-29", "2026-03-29T20:00:00Z"), ("2026-10-25", "2026-10-25T21:00:00Z")],
    ids=["winter", "spring-forward", "fall-back"],
)
def test_a_t0_redemption_before_the_cutoff_is_paid_by_that_days_intraday_run_one_at_it_by_the_next_daily(
    world, x, cutoff
):
    berlin(world)
    at = datetime.fromisoformat(cutoff.replace("Z", "+00:00"))
    before = (at - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    post(world, "jnl_rdm_before", before, x, x, "merchant:m1")  # 21:59:59 local, T+0
    post(world, "jnl_rdm_at", cutoff, x, x, "merchant:m2")  # 22:00:00 local, T+0

    world.settle(x, execution="exec-t0", kind="INTRADAY")

    intraday = rules.run_id(x, "INTRADAY")
    assert world.store.run(intraday)["cutoff_at"] == cutoff.replace("Z", ".000000Z")
    assert paid_merchants(world, intraday) == {"merchant:m1"}  # the same day
    world.settle(rules.next_day(x), execution="exec-next")
    assert paid_merchants(world, rules.run_id(rules.next_day(x))) == {"merchant:m2"}


def test_await_clearing_waits_for_a_record_before_the_cutoff_and_not_for_one_after_it(world):
    berlin(world)
    # The daily run of 2026-03-29 is cut at 2026-03-28T23:00Z; the intraday one at 2026-03-29T20:00Z.
    pending(world, "rdm_late_evening", "2026-03-28", "2026-03-28T22:59:59Z")
    pending(world, "rdm_after_midnight", "2026-03-29", "2026-03-29T00:30:00Z")
    daily = world.open(X, "exec-d")
    with pytest.raises(ClearingBehind, match="rdm_late_evening") as behind:
        world.steps.await_clearing(X, cutoff_at=daily["cutoff_at"])
    assert "rdm_after_midnight" not in str(behind.value)

    intraday = world.open(X, "exec-i", "INTRADAY")
    with pytest.raises(ClearingBehind, match="rdm_after_midnight"):
        world.steps.await_clearing(X, cutoff_at=intraday["cutoff_at"])
    pending(world, "rdm_late_evening", "2026-03-28", "2026-03-28T22:59:59Z", cleared=True)
    pending(world, "rdm_after_midnight", "2026-03-29", "2026-03-29T00:30:00Z", cleared=True)
    pending(world, "rdm_after_cutoff", "2026-03-29", "2026-03-29T20:00:00Z")  # 22:00 local: the next run's
    assert world.steps.await_clearing(X, cutoff_at=intraday["cutoff_at"]) == {
        "cleared_through": X, "cutoff_at": intraday["cutoff_at"],
    }  # fmt: skip


def test_a_schedule_opens_the_run_of_the_local_date_it_fires_on_with_its_cutoff(world):
    berlin(world)
    # 02:00 CEST on 2026-03-29 does not exist; the schedule fires at 03:00 CEST = 01:00Z.
    daily = world.steps.open(execution="sched-d", scheduled_at="2026-03-29T01:00:00Z", kind="DAILY")
    intraday = world.steps.open(execution="sched-i", scheduled_at="2026-03-29T20:00:00Z", kind="INTRADAY")
    assert (daily["run_id"], daily["cutoff_at"]) == ("stl_20260329", "2026-03-28T23:00:00.000000Z")
    assert (intraday["run_id"], intraday["cutoff_at"]) == ("stl_20260329_t0", "2026-03-29T20:00:00.000000Z")
    assert world.store.run("stl_20260329_t0")["run_kind"] == "INTRADAY"


def pending(world, redemption_id: str, business_date: str, redeemed_at: str, *, cleared: bool = False) -> None:
    """A redemption item as the redemption code writes it: in the clearing-pending index until cleared."""
    item = {
        "pk": f"REDEMPTION#{redemption_id}", "sk": "REDEMPTION", "kind": "REDEMPTION",
        "redemption_id": redemption_id, "business_date": business_date, "redeemed_at": redeemed_at,
        **({} if cleared else pending_index(redemption_id, business_date)),
    }  # fmt: skip
    world.ddb.put_item(TableName=MAIN_TABLE, Item=to_item(item))
