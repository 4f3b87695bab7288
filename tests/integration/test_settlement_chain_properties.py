"""Whole-chain properties (issue #14, point 6) on moto: random redemption journals of random parties
over a few days (T+0 / T+1 / T+2 mixes, counted in calendar days or over a random holiday calendar),
random refunds of them (each share reversed in proportion by the largest-remainder rule, never more
than was cleared, on the same day or later), random channel fees borne by either side, and runs day
after day as the schedules make them (the intraday run of a day at its T+0 cut-off, when drawn, and
the daily run of the next day, cut at its start), each posting carrying its event's time →

- every journal sums to 0 and the sum of all balances is 0;
- after each run, every party's balance equals what later runs will settle (its unclaimed postings
  plus what it carries forward), but for the platform's fees it bears: owed to `fees:{channel}`,
  charged by the channel, never settled by a run;
- Σ transfers the bank moved (+ paid out, − collected) equals Σ of the transfer journals' legs on
  `settlement:{channel}`;
- a run takes only postings due by its date whose event came before its cut-off.

(Commissions ride in the redemption's journal, so here they are legs like any other; commissions
themselves have their properties in tests/unit/test_commission.py.)"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupons.domain import calendars, timeline
from coupons.domain.calendars import BusinessCalendar
from coupons.domain.channel_fees import FeeSchedule
from coupons.domain.ledger import Journal, Leg
from coupons.domain.money import split
from coupons.services.settlement import SettlementSteps
from tests.integration.test_settlement_steps import MINIMUMS, moto_world

ZONE = "Asia/Shanghai"
T0_CUTOFF = "22:00"  # 14:00Z in Shanghai
# Friday to Tuesday: a weekend inside, so a calendar moves due dates.
DAYS = ["2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10"]
EVENT_DAYS = DAYS[:3]
# Event times (UTC) on a day: 09:00, 21:59 and 22:30 local, on both sides of the T+0 cut-off.
EVENT_TIMES = ["01:00:00", "13:59:59", "14:30:00"]
PARTIES = ["platform", "brand:b1", "merchant:m1", "merchant:m2", "merchant:m3"]


@st.composite
def calendars_(draw):
    """No calendar (T+N in calendar days), or one with a weekend and random holidays among the days."""
    if draw(st.booleans()):
        return None
    holidays = draw(st.sets(st.sampled_from(DAYS[1:]), max_size=2))
    return BusinessCalendar(
        name="random",
        through=date(2026, 12, 31),
        holidays=frozenset(date.fromisoformat(d) for d in holidays),
    )


@st.composite
def redemptions(draw):
    """A balanced journal (a few parties' amounts, the last one taking the rest), its day, event time,
    cycle, and a refund of it drawn as a fraction (0: none) on the same day or a later one."""
    accounts = draw(st.lists(st.sampled_from(PARTIES), min_size=2, max_size=4, unique=True))
    amounts = [draw(st.integers(-3000, 3000)) for _ in accounts[:-1]]
    amounts.append(-sum(amounts))
    day = draw(st.sampled_from(EVENT_DAYS))
    return {
        "legs": dict(zip(accounts, amounts, strict=True)),
        "day": day,
        "at": draw(st.sampled_from(EVENT_TIMES)),
        "cycle": draw(st.sampled_from(["T+0", "T+1", "T+2"])),
        "refund": draw(st.sampled_from([0, 0, 1, 3, 4])),  # quarters of it refunded
        "refund_day": draw(st.sampled_from([d for d in EVENT_DAYS if d >= day])),
        "refund_at": draw(st.sampled_from(EVENT_TIMES)),
    }


def refund_legs(legs: dict[str, int], quarters: int) -> dict[str, int]:
    """Each side's shares reversed in proportion (largest remainder, the parties in leg order): what
    the parties were owed (+) and owed (−) by the same total, so the refund sums to 0, and no share is
    reversed beyond what it cleared."""
    owed = [(a, v) for a, v in legs.items() if v > 0]
    owing = [(a, -v) for a, v in legs.items() if v < 0]
    total = sum(v for _, v in owed) * quarters // 4
    if not total:
        return {}
    back = {a: -v for a, v in split(total, owed).items()}
    back.update(split(total, owing))
    for account, amount in back.items():
        assert abs(amount) <= abs(legs[account])
    return back


fees = st.builds(
    FeeSchedule,
    bps=st.integers(0, 200),
    minimum=st.fixed_dictionaries({"CNY": st.integers(0, 99)}),
    borne_by=st.sampled_from(["PARTY", "PLATFORM"]),
)


def post(world, journal_id, legs, *, kind, day, at, cycle, calendar):
    world.ledger.post(
        Journal(
            journal_id=journal_id,
            source_id=journal_id.removeprefix("jnl_"),
            kind=kind,
            currency="CNY",
            legs=tuple(Leg(a, v) for a, v in legs.items()),
            party_shares={},
        ),
        business_date=day,
        due_date=calendars.due_date(day, cycle, calendar),
        posted_at=f"{day}T{at}Z",
        extra={"redemption_id": journal_id, "event_at": f"{day}T{at}Z"},
    )


def runs_in_order(intraday: set[str]):
    """The runs as the schedules start them: on each day its daily run (02:00, cut at its start), then
    its intraday run (22:00, cut then) when drawn."""
    for day in DAYS:
        yield day, "DAILY"
        if day in intraday:
            yield day, "INTRADAY"


def owed_later(world, run_ids) -> dict[str, int]:
    """What later runs will settle per party: unclaimed postings and unsettled carried amounts; and
    what the platform owes the channel for the fees it bears (its leg of a transfer's journal, born
    settled: the channel charges it, no run pays it)."""
    owed: dict[str, int] = defaultdict(int)
    for run_id in run_ids:
        for record in world.store.parties(run_id):
            for outcome in record.get("currencies", {}).values():
                if outcome.get("fee_borne_by") == "PLATFORM" and outcome["status"] == "SENT":
                    owed["platform"] -= outcome["fee"]
    for item in world.table():
        cleared = item["pk"].startswith("ENTRIES#") and item["source_kind"] not in ("PAYOUT", "COLLECTION")
        carried = item["pk"].startswith("CARRY#")
        if (cleared or carried) and not item.get("settled"):
            owed[item["account"]] += item["amount"]
    return owed


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    posted=st.lists(redemptions(), min_size=1, max_size=5),
    schedule=fees,
    calendar=calendars_(),
    intraday=st.sets(st.sampled_from(EVENT_DAYS)),
)
def test_every_run_leaves_each_balance_equal_to_what_later_runs_will_settle(posted, schedule, calendar, intraday):
    with moto_world() as world:
        world.steps = SettlementSteps(
            world.store, world.redemptions, world.statements, lambda: world.bank,
            time_zone=ZONE, minimums=MINIMUMS, clock=world.clock,
            channel_name="simulated", fees={"simulated": schedule}, t0_cutoff=T0_CUTOFF,
        )  # fmt: skip
        for i, r in enumerate(posted):
            legs = {a: v for a, v in r["legs"].items() if v} or {"platform": 0}
            common = {"cycle": r["cycle"], "calendar": calendar}
            post(world, f"jnl_rdm_{i}", legs, kind="REDEMPTION", day=r["day"], at=r["at"], **common)
            refunded = refund_legs(legs, r["refund"])
            if refunded:
                post(world, f"jnl_rvs_{i}", refunded, kind="REVERSAL", day=r["refund_day"], at=r["refund_at"], **common)
        done = []
        for n, (day, kind) in enumerate(runs_in_order(intraday)):
            closed = world.settle(day, execution=f"exec-{n}", kind=kind)
            done.append(closed["run_id"])
            cutoff = timeline.cutoff_of(kind, day, ZONE, T0_CUTOFF)
            for party in world.parties(closed["run_id"]):
                for line in world.store.lines(closed["run_id"], party):
                    if line.get("source_kind") != "CARRY_FORWARD":
                        posting = next(p for p in world.postings() if p["journal_id"] == line["journal_id"])
                        assert cutoff.takes(due_date=posting["due_date"], event_at=posting["event_at"])
            balances = {p: world.ledger.balance(p).get("CNY", 0) for p in PARTIES}
            later = owed_later(world, done)
            assert balances == {p: later.get(p, 0) for p in PARTIES}, (day, kind)
            everything = {i["account"] for i in world.table() if i["pk"].startswith("BALANCE#")}
            assert sum(world.ledger.balance(a).get("CNY", 0) for a in everything) == 0
        for item in world.table():
            if item["pk"].startswith("JOURNAL#"):
                assert sum(leg["amount"] for leg in item["legs"]) == 0
        moved = sum(r.amount if r.direction.value == "PAYOUT" else -r.amount for r in world.bank.accepted())
        assert world.ledger.balance("settlement:simulated").get("CNY", 0) == moved
        # Nothing was skipped: whatever no run took, the last daily run could not take either.
        last = timeline.daily_cutoff(DAYS[-1], ZONE)
        for p in world.postings():
            if not p.get("settled"):
                assert not last.takes(due_date=p["due_date"], event_at=p["event_at"]), p
