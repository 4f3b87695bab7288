"""Whole-chain properties (issue #14, point 6) on moto: random journals of random parties due over a
few days (T+0 / T+1 / T+2 mixes), random channel fees borne by either side, runs day after day →

- every journal sums to 0 and the sum of all balances is 0;
- after each run, every party's balance equals what later runs will settle (its unclaimed postings
  plus what it carries forward), but for the platform's fees it bears: owed to `fees:{channel}`,
  charged by the channel, never settled by a run;
- Σ transfers the bank moved (+ paid out, − collected) equals Σ of the transfer journals' legs on
  `settlement:{channel}`.

(Commissions ride in the redemption's journal, so here they are legs like any other; refunds and
commissions themselves have their properties in tests/unit/test_commission.py.)"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupons.domain import settlement as rules
from coupons.domain.channel_fees import FeeSchedule
from coupons.services.settlement import SettlementSteps
from tests.integration.test_settlement_steps import MINIMUMS, moto_world

DAYS = ["2026-03-09", "2026-03-10", "2026-03-11"]
PARTIES = ["platform", "brand:b1", "merchant:m1", "merchant:m2", "merchant:m3"]


@st.composite
def journals(draw):
    """A balanced journal: a few parties' amounts, the last one taking the rest."""
    accounts = draw(st.lists(st.sampled_from(PARTIES), min_size=2, max_size=4, unique=True))
    amounts = [draw(st.integers(-3000, 3000)) for _ in accounts[:-1]]
    amounts.append(-sum(amounts))
    day = draw(st.sampled_from(DAYS[:2]))
    lag = draw(st.sampled_from([0, 1, 2]))  # T+0, T+1, T+2
    return dict(zip(accounts, amounts, strict=True)), day, rules.next_day(day) if lag == 1 else (
        rules.next_day(rules.next_day(day)) if lag == 2 else day
    )


fees = st.builds(
    FeeSchedule,
    bps=st.integers(0, 200),
    minimum=st.fixed_dictionaries({"CNY": st.integers(0, 99)}),
    borne_by=st.sampled_from(["PARTY", "PLATFORM"]),
)


def owed_later(world) -> dict[str, int]:
    """What later runs will settle per party: unclaimed postings and unsettled carried amounts; and
    what the platform owes the channel for the fees it bears (its leg of a transfer's journal, born
    settled: the channel charges it, no run pays it)."""
    owed: dict[str, int] = defaultdict(int)
    for day in DAYS:
        for record in world.store.parties(rules.run_id(day)):
            for outcome in record.get("currencies", {}).values():
                if outcome.get("fee_borne_by") == "PLATFORM" and outcome["status"] == "SENT":
                    owed["platform"] -= outcome["fee"]
    for item in world.table():
        cleared = item["pk"].startswith("ENTRIES#") and item["source_kind"] not in ("PAYOUT", "COLLECTION")
        carried = item["pk"].startswith("CARRY#")
        if (cleared or carried) and not item.get("settled"):
            owed[item["account"]] += item["amount"]
    return owed


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(posted=st.lists(journals(), min_size=1, max_size=6), schedule=fees)
def test_every_run_leaves_each_balance_equal_to_what_later_runs_will_settle(posted, schedule):
    with moto_world() as world:
        world.steps = SettlementSteps(
            world.store, world.redemptions, world.statements, lambda: world.bank,
            time_zone="Asia/Shanghai", minimums=MINIMUMS, clock=world.clock,
            channel_name="simulated", fees={"simulated": schedule},
        )  # fmt: skip
        for i, (legs, day, due) in enumerate(posted):
            legs = {a: v for a, v in legs.items() if v} or {"platform": 0}
            world.post(f"jnl_rdm_{i}", legs, business_date=day, due_date=due)
        for n, day in enumerate(DAYS):
            world.settle(day, execution=f"exec-{n}")
            balances = {p: world.ledger.balance(p).get("CNY", 0) for p in PARTIES}
            later = owed_later(world)
            assert balances == {p: later.get(p, 0) for p in PARTIES}, day
            everything = {
                i["account"] for i in world.table() if i["pk"].startswith("BALANCE#")
            }
            assert sum(world.ledger.balance(a).get("CNY", 0) for a in everything) == 0
        for item in world.table():
            if item["pk"].startswith("JOURNAL#"):
                assert sum(leg["amount"] for leg in item["legs"]) == 0
        moved = sum(r.amount if r.direction.value == "PAYOUT" else -r.amount for r in world.bank.accepted())
        assert world.ledger.balance("settlement:simulated").get("CNY", 0) == moved
