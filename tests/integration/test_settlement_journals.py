"""Settlement posts journals (issue #14, points 1 and 5): each transfer moves the party's balance to
`settlement:{channel}` (and a channel fee to `fees:{channel}`) in the same transaction that records it
SENT, exactly once under retries; its postings are born settled, never in the unsettled index; a
balance is then what is still owed. The day is test_settlement_steps.post_the_day's."""

from __future__ import annotations

import json

import pytest

from coupons.data.ledger import SHARDS, unsettled_partition
from coupons.domain import settlement as rules
from coupons.domain.channel_fees import FeeSchedule
from coupons.services.settlement import SettlementSteps, TransfersIncomplete
from tests.integration.test_settlement_steps import DAY, MINIMUMS, RUN, post_the_day
from tests.integration.test_settlement_steps import world as world  # noqa: F401  (fixture)

CHANNEL = "simulated"


def with_fees(world, **schedule) -> None:
    world.steps = SettlementSteps(
        world.store,
        world.redemptions,
        world.statements,
        lambda: world.bank,
        time_zone="Asia/Shanghai",
        minimums=MINIMUMS,
        clock=world.clock,
        channel_name=CHANNEL,
        fees={CHANNEL: FeeSchedule(**schedule)},
    )


def accepted(world) -> dict[str, tuple[str, int]]:
    by_id = {rules.instruction_id(RUN, p, "CNY"): p for p in world.parties()}
    return {by_id[r.instruction_id]: (r.direction.value, r.amount) for r in world.bank.accepted()}


def balances(world) -> dict[str, int]:
    accounts = {i["account"] for i in world.table() if i["pk"].startswith("BALANCE#")}
    return {a: world.ledger.balance(a).get("CNY", 0) for a in sorted(accounts)}


def unsettled_journals(world) -> set[str]:
    found = set()
    for shard in range(SHARDS):
        page = world.ddb.query(
            TableName="coupons-test-main",
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :p",
            ExpressionAttributeValues={":p": {"S": unsettled_partition(shard)}},
        )
        found |= {i["journal_id"]["S"] for i in page["Items"] if "journal_id" in i}
    return found


def test_after_a_run_every_balance_is_what_is_still_owed_and_all_balances_sum_to_zero(world):
    post_the_day(world)
    world.settle()

    # merchant:m1 +1300 paid, brand:b1 −3020 collected, merchant:m2 +2500 paid (its T+2 50 still owed),
    # platform −780 collected (its T+2 −50 still owed); what moved sits in settlement:simulated.
    assert balances(world) == {
        "brand:b1": 0,
        "merchant:m1": 0,
        "merchant:m2": 50,
        "platform": -50,
        "settlement:simulated": 1300 + 2500 - 3020 - 780,
    }
    for party, legs in {
        "merchant:m1": {"merchant:m1": -1300, "settlement:simulated": 1300},
        "brand:b1": {"brand:b1": 3020, "settlement:simulated": -3020},
    }.items():
        instruction = rules.instruction_id(RUN, party, "CNY")
        journal = world.ledger.journal(f"jnl_{instruction}")
        assert {leg["account"]: leg["amount"] for leg in journal["legs"]} == legs
        assert journal["source_id"] == instruction and journal["run_id"] == RUN


def test_transfer_postings_are_born_settled_and_never_enter_the_unsettled_index(world):
    post_the_day(world)
    world.settle()

    transfers = world.transfer_postings()
    assert len(transfers) == 8  # 4 transfers × (party + settlement:simulated)
    assert all(p["settled"] is True and p["run_id"] == RUN for p in transfers)
    assert all("gsi1pk" not in p for p in transfers)
    assert unsettled_journals(world) == {"jnl_rdm_4"}  # only the T+2 redemption waits
    # The next run settles the T+2 redemption only, never a transfer again.
    world.settle("2026-03-11", execution="exec-2")
    lines = [line for p in world.parties(rules.run_id("2026-03-11")) for line in world.store.lines(rules.run_id("2026-03-11"), p)]
    assert {line["journal_id"] for line in lines} == {"jnl_rdm_4"}
    # Both nets (50, −50) are below the minimum of 100: carried, so still owed.
    assert balances(world)["merchant:m2"] == 50 and balances(world)["platform"] == -50


def test_a_pay_step_run_again_or_after_a_lost_acknowledgement_posts_each_transfer_journal_once(world):
    post_the_day(world)
    world.open()
    world.claim_all()
    (batch,) = world.batches()
    world.bank.inject("merchant:m2", "timeout", times=1)
    with pytest.raises(TransfersIncomplete):
        world.steps.pay(RUN, DAY, batch["parties"])  # m2's acknowledgement lost: INSTRUCTED, unposted
    assert world.transfer("merchant:m2")["status"] == "INSTRUCTED"
    assert balances(world)["merchant:m2"] == 2550
    world.steps.pay(RUN, DAY, batch["parties"])
    once = world.table()
    world.steps.pay(RUN, DAY, batch["parties"])

    assert world.table() == once
    assert len(world.transfer_postings()) == 8
    assert balances(world)["merchant:m2"] == 50


def test_a_party_borne_channel_fee_comes_off_the_payout_and_is_posted_to_the_channels_fees(world):
    with_fees(world, bps=60, minimum={"CNY": 10}, maximum={"CNY": 20}, borne_by="PARTY")
    post_the_day(world)
    world.settle()

    # Fees: m1 1300 × 0.6 % = 7.8 → 7, raised to the minimum 10; m2 2500 → 15; b1 3020 → 18.12 → 18;
    # platform 780 → 4.68 → 4 → 10. Payouts arrive short, collections take the fee on top.
    assert accepted(world) == {
        "merchant:m1": ("PAYOUT", 1290),
        "merchant:m2": ("PAYOUT", 2485),
        "brand:b1": ("COLLECTION", 3038),
        "platform": ("COLLECTION", 790),
    }
    assert balances(world) == {
        "brand:b1": 0,
        "fees:simulated": 10 + 15 + 18 + 10,
        "merchant:m1": 0,
        "merchant:m2": 50,
        "platform": -50,
        "settlement:simulated": 1290 + 2485 - 3038 - 790,
    }
    statement = json.loads(world.statement("merchant:m2"))
    (total,) = statement["totals"]
    assert total | {"instruction_id": None, "channel_reference": None} == {
        "currency": "CNY",
        "lines": 1,
        "net": 2500,
        "decision": "PAYOUT",
        "transfer": 2500,
        "carried_forward": 0,
        "instruction_id": None,
        "channel_reference": None,
        "opening_balance": 50,  # the T+2 redemption, owed but not due
        "fee": 15,
        "fee_borne_by": "PARTY",
        "transferred": 2485,
        "closing_balance": 50,
    }
    csv_total = world.statement("merchant:m2", fmt="csv").splitlines()[-1].split(",")
    assert csv_total[-4:] == ["50", "15", "2485", "50"]


def test_a_platform_borne_channel_fee_moves_the_net_and_the_platform_owes_the_fee(world):
    with_fees(world, bps=60, borne_by="PLATFORM")
    post_the_day(world)
    world.settle()

    assert accepted(world)["merchant:m2"] == ("PAYOUT", 2500)
    owed = balances(world)
    assert owed["fees:simulated"] == 7 + 15 + 18 + 4
    assert owed["platform"] == -50 - (7 + 15 + 18 + 4)
    assert owed["merchant:m2"] == 50 and sum(owed.values()) == 0


def test_a_statement_shows_gross_commission_and_net_of_lines_charged_a_commission(world):
    # A redemption whose merchant leg carries a commission of 300 (gross 1,000, net 700), and a
    # reversal giving back 150 of it (gross −500, net −350).
    world.post("jnl_rdm_c", {"brand:b1": -1000, "platform": 300, "merchant:m1": 700})
    world.post("jnl_rvs_c", {"brand:b1": 500, "platform": -150, "merchant:m1": -350}, kind="REVERSAL")
    for journal_id, commission in (("jnl_rdm_c", 300), ("jnl_rvs_c", -150)):
        key = next(p for p in world.postings() if p["journal_id"] == journal_id and p["account"] == "merchant:m1")
        world.ddb.update_item(
            TableName="coupons-test-main",
            Key={"pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}},
            UpdateExpression="SET commission = :c",
            ExpressionAttributeValues={":c": {"N": str(commission)}},
        )
    world.settle()

    (total,) = json.loads(world.statement("merchant:m1"))["totals"]
    assert (total["gross"], total["commission"], total["net"]) == (500, 150, 350)
    lines = json.loads(world.statement("merchant:m1"))["lines"]
    assert [(x["amount"], x["commission"]) for x in lines] == [(700, 300), (-350, -150)]
