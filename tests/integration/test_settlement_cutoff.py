"""A run's cut-off (issue #14, point 2, the part wired so far): postings carry their event's time
(clearing writes the redemption's redeemed_at / the reversal's reversed_at), and the claim step given
a cut-off takes only postings whose event happened before it; the rest stay in the unsettled index
for a later run. In Berlin on the day the clocks go forward (2026-03-29: 22:00 local is 20:00Z)."""

from __future__ import annotations

from coupons.data.ledger import SHARDS
from coupons.domain import settlement as rules
from coupons.domain import timeline
from coupons.domain.ledger import Journal, Leg
from tests.integration.test_clearing_handler import RDM, store
from tests.integration.test_clearing_redelivery import batch, redemption
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
