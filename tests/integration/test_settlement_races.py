"""Settlement steps that overlap: a claim still writing after its run was planned (a Lambda the state
machine gave up on and retried, still running), two Pay invocations on one transfer, and a channel
that holds another payment under our instruction id."""

from __future__ import annotations

import pytest

from coupons.data.ledger import shard_of
from coupons.data.settlement import SettlementStore
from coupons.domain import settlement as rules
from coupons.domain.payments import Direction, Instruction, InstructionMismatch
from coupons.services.settlement import TransfersIncomplete
from tests.integration.test_settlement_steps import (
    DAY,
    MAIN_TABLE,
    NETS,
    RUN,
    moto_world,
    post_the_day,
    ready_to_pay,
)

LATER = "2026-03-10"


@pytest.fixture
def world():
    with moto_world() as made:
        yield made


class PlannedAfterItsRead(SettlementStore):
    """The claim step's one read of the run happens, then the run is planned (`plan` runs), then the
    claim goes on writing: the steps driven in that order."""

    def __init__(self, client, then):
        super().__init__(client, MAIN_TABLE)
        self._then = then

    def run(self, run_id):
        found = super().run(run_id)
        if self._then:
            self._then.pop()()
        return found


def test_a_posting_claimed_after_its_run_was_planned_stays_unsettled_for_the_next_run(world):
    # Given the day claimed; then a late journal (an existing party, merchant:m1, and a new one, m9)
    post_the_day(world)
    world.open()
    world.claim_all()
    world.post("jnl_rdm_late", {"platform": -900, "merchant:m1": 400, "merchant:m9": 500})
    shard = shard_of("jnl_rdm_late")

    # When a claim of its shard reads the run (not planned yet), the run is planned, and the claim writes
    planned = []
    late_claim = world.make_steps(
        store=PlannedAfterItsRead(world.ddb, [lambda: planned.append(world.batches())])
    )
    result = late_claim.claim(RUN, DAY, shard)

    # Then it claimed nothing: the late postings are still unsettled, in the index, with no line
    assert planned and result["claimed"] == 0
    late = [p for p in world.postings() if p["journal_id"] == "jnl_rdm_late"]
    assert len(late) == 3 and all("run_id" not in p and p["gsi1pk"].startswith("UNSETTLED#") for p in late)
    assert [x["journal_id"] for x in world.store.lines(RUN, "merchant:m1")] == [
        "jnl_rdm_1",
        "jnl_rdm_2",
        "jnl_rvs_1",
    ]
    assert world.store.party(RUN, "merchant:m9") is None

    # And the run settles what it planned and closes, each party paid its planned net
    [batch] = planned[0]
    for step in (world.steps.pay, world.steps.write_statements):
        step(RUN, DAY, batch["parties"])
    world.steps.mark_settled(RUN, batch["parties"])
    closed = world.steps.close(RUN, "exec-1")
    assert closed["party_count"] == 4 and world.store.run(RUN)["status"] == "CLOSED"
    assert world.paid() == NETS

    # And the next day's run takes the late postings and pays them
    world.settle(LATER, "exec-2")
    assert world.paid(rules.run_id(LATER)) == {"platform": -900, "merchant:m1": 400, "merchant:m9": 500}
    assert all(p["settled"] for p in world.postings() if p["journal_id"] != "jnl_rdm_4")


# -- two Pay invocations on one transfer ------------------------------------------------------------


class CountingSends:
    """Wraps the bank: how many times each instruction id was sent."""

    def __init__(self, bank):
        self.bank, self.sends = bank, []

    def send(self, instruction):
        self.sends.append(instruction.instruction_id)
        return self.bank.send(instruction)

    def status(self, instruction_id):
        return self.bank.status(instruction_id)


class OtherInvocationFirst(SettlementStore):
    """Before this invocation's first status write for `party`, the other invocation's whole Pay of it
    runs: both read the transfer PENDING, the other moves it first."""

    def __init__(self, client, party, other):
        super().__init__(client, MAIN_TABLE)
        self._party, self._other = party, other

    def set_transfer(self, run_id, party, currency, changes, *, from_status, **journal):
        if party == self._party and self._other:
            self._other.pop()()
        return super().set_transfer(run_id, party, currency, changes, from_status=from_status, **journal)


def test_two_pay_invocations_racing_on_one_transfer_send_it_once_and_the_loser_stands_down(world):
    batch = ready_to_pay(world)
    channel = CountingSends(world.bank)
    first = world.make_steps(channel=channel)
    party = "merchant:m2"
    loser = world.make_steps(
        store=OtherInvocationFirst(world.ddb, party, [lambda: first.pay(RUN, DAY, [party])]), channel=channel
    )

    # When the loser's PENDING → INSTRUCTED finds the other invocation got there first
    with pytest.raises(TransfersIncomplete, match=f"{party} CNY"):
        loser.pay(RUN, DAY, batch["parties"])

    # Then it sent nothing for that transfer (the winner sent it once); the other parties were paid
    ins = rules.instruction_id(RUN, party, "CNY")
    assert channel.sends.count(ins) == 1
    assert world.transfer(party)["status"] == "SENT"
    assert len(channel.sends) == len(NETS) and world.paid() == NETS

    # And its retry finds everything sent and sends nothing
    assert loser.pay(RUN, DAY, batch["parties"]) == {"parties": 4, "sent": 0}
    assert len(channel.sends) == len(NETS)


def test_a_lost_race_to_record_sent_is_not_an_error(world):
    # Given a transfer INSTRUCTED (an earlier attempt died after the bank accepted it)
    batch = ready_to_pay(world)
    party = "merchant:m1"
    world.bank.inject(party, "timeout")
    with pytest.raises(TransfersIncomplete):
        world.steps.pay(RUN, DAY, [party])
    channel = CountingSends(world.bank)
    first = world.make_steps(channel=channel)
    # When two retries ask the bank by id, and the other records SENT first
    loser = world.make_steps(
        store=OtherInvocationFirst(world.ddb, party, [lambda: first.pay(RUN, DAY, [party])]), channel=channel
    )

    loser.pay(RUN, DAY, batch["parties"])

    # Then neither resent it (the bank had it), and it is SENT once with the bank's reference
    assert rules.instruction_id(RUN, party, "CNY") not in channel.sends
    assert world.transfer(party)["status"] == "SENT" and world.paid() == NETS


# -- the channel holds another payment under our id --------------------------------------------------


def test_an_instruction_the_channel_holds_for_another_payment_fails_the_step_as_permanent(world):
    # Given the bank holds our instruction id for merchant:m2 with another amount
    batch = ready_to_pay(world)
    ins = rules.instruction_id(RUN, "merchant:m2", "CNY")
    world.bank.send(Instruction(ins, RUN, "merchant:m2", "CNY", 9999, Direction.PAYOUT, "elsewhere"))

    # When Pay sends it: the mismatch is permanent (the state machine never retries it)
    with pytest.raises(InstructionMismatch, match="merchant:m2 CNY"):
        world.steps.pay(RUN, DAY, batch["parties"])

    # Then the others were paid, m2's transfer is left INSTRUCTED (resumable once the cause is fixed)
    assert world.transfer("merchant:m2")["status"] == "INSTRUCTED"
    assert {p: world.paid()[p] for p in NETS if p != "merchant:m2"} == {
        p: n for p, n in NETS.items() if p != "merchant:m2"
    }

    # And a retry, which asks the bank by id, does not take the other payment's receipt for ours
    with pytest.raises(InstructionMismatch, match="merchant:m2 CNY"):
        world.steps.pay(RUN, DAY, batch["parties"])
    assert world.transfer("merchant:m2")["status"] == "INSTRUCTED"
