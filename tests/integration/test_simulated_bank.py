"""The simulated bank against moto: one payment per instruction id whatever is resent or raced, and each
injected fault failing exactly as a real channel would."""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from coupons.channels import channel_from_environment
from coupons.channels.simulated import SimulatedBank
from coupons.data.schema import BANK
from coupons.domain.payments import (
    ChannelRejected,
    ChannelStatus,
    ChannelTimeout,
    ChannelUnavailable,
    Direction,
    Instruction,
    InstructionMismatch,
    PaymentChannel,
)
from tests.integration.moto_threads import OneRequestAtATime

TABLE = "coupons-test-bank"
START = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


def instruction(party="merchant:m1") -> Instruction:
    return Instruction(
        instruction_id=f"run-1#{party}",
        run_id="run-1",
        party=party,
        currency="CNY",
        amount=10_000,
        direction=Direction.PAYOUT,
        reference="Coupon settlement run-1",
    )


class Clock:
    """Moves a second on every reading: a resend's receipt must still carry the first time."""

    def __init__(self):
        self.now = START

    def __call__(self):
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def ddb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(**BANK.create_table_kwargs(TABLE))
        yield client


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def crashes():
    return []


@pytest.fixture
def bank(ddb, sleeps, crashes) -> SimulatedBank:
    return SimulatedBank(ddb, TABLE, clock=Clock(), sleep=sleeps.append, crash=lambda: crashes.append(1))


# -- payments and idempotency ----------------------------------------------------------------------


def test_an_accepted_instruction_gets_a_receipt_with_a_reference_derived_from_its_id(bank):
    receipt = bank.send(instruction())

    assert receipt.status is ChannelStatus.ACCEPTED
    assert (receipt.amount, receipt.currency, receipt.direction) == (10_000, "CNY", Direction.PAYOUT)
    assert receipt.accepted_at == "2025-03-01T02:00:01.000000Z"
    assert receipt.channel_reference.startswith("SIMBANK-")
    suffix = receipt.channel_reference.removeprefix("SIMBANK-")
    assert len(suffix) == 20 and suffix == suffix.upper() and int(suffix, 16) >= 0
    assert isinstance(bank, PaymentChannel)


def test_resending_an_instruction_returns_the_first_receipt(bank):
    first = bank.send(instruction())

    again = bank.send(instruction())
    # run and reference are descriptive: a resend with other text is still the same payment
    reworded = bank.send(replace(instruction(), reference="retry", run_id="run-1b"))

    assert again == first == reworded
    assert bank.accepted() == [first]


@pytest.mark.parametrize(
    "change",
    [{"amount": 10_001}, {"currency": "USD"}, {"direction": Direction.COLLECTION}, {"party": "merchant:m2"}],
)
def test_resending_an_id_for_a_different_payment_is_refused_as_a_mismatch(bank, change):
    first = bank.send(instruction())

    with pytest.raises(InstructionMismatch):
        bank.send(replace(instruction(), **change))

    assert bank.accepted() == [first]


def test_status_is_none_before_the_bank_receives_an_instruction_and_the_receipt_after(bank):
    assert bank.status("run-1#merchant:m1") is None

    receipt = bank.send(instruction())

    assert bank.status("run-1#merchant:m1") == receipt


def test_accepted_lists_every_payment_oldest_first(bank):
    receipts = [bank.send(instruction(party=p)) for p in ("merchant:m2", "brand:b1", "platform")]

    assert bank.accepted() == receipts


def test_concurrent_sends_of_one_instruction_make_one_payment(ddb, bank):
    bank = SimulatedBank(OneRequestAtATime(ddb), TABLE)
    start = threading.Barrier(16)

    def send(_):
        start.wait()
        return bank.send(instruction())

    with ThreadPoolExecutor(16) as pool:
        receipts = list(pool.map(send, range(16)))

    assert len(set(receipts)) == 1
    assert bank.accepted() == receipts[:1]


# -- faults ------------------------------------------------------------------------------------------


def test_a_failing_bank_raises_unavailable_records_nothing_and_works_on_the_retry(bank):
    bank.inject("merchant:m1", "fail")

    with pytest.raises(ChannelUnavailable):
        bank.send(instruction())
    assert bank.status("run-1#merchant:m1") is None

    assert bank.send(instruction()).status is ChannelStatus.ACCEPTED


def test_a_rejection_raises_rejected_and_records_nothing(bank):
    bank.inject("merchant:m1", "reject")

    with pytest.raises(ChannelRejected):
        bank.send(instruction())

    assert bank.accepted() == []


def test_after_a_timeout_status_recovers_the_receipt_the_bank_kept(bank):
    bank.inject("merchant:m1", "timeout")

    with pytest.raises(ChannelTimeout):
        bank.send(instruction())

    recovered = bank.status("run-1#merchant:m1")
    assert recovered is not None and recovered.status is ChannelStatus.ACCEPTED
    assert bank.send(instruction()) == recovered  # a resend after the timeout does not pay twice
    assert bank.accepted() == [recovered]


def test_a_slow_bank_waits_then_answers_normally(bank, sleeps):
    bank.inject("merchant:m1", "slow", delay_ms=1500)

    receipt = bank.send(instruction())

    assert sleeps == [1.5]
    assert bank.accepted() == [receipt]


def test_the_crash_hook_runs_after_the_bank_recorded_the_payment(ddb):
    seen_at_crash = []
    bank = SimulatedBank(ddb, TABLE, crash=lambda: seen_at_crash.append(bank.status("run-1#merchant:m1")))
    bank.inject("merchant:m1", "crash")

    receipt = bank.send(instruction())

    assert seen_at_crash == [receipt]


def test_by_default_a_crash_exits_the_process_like_a_killed_lambda(ddb, monkeypatch):
    import coupons.channels.simulated as simulated

    exits = []
    monkeypatch.setattr(simulated.os, "_exit", exits.append)
    bank = SimulatedBank(ddb, TABLE)
    bank.inject("*", "crash")

    bank.send(instruction())

    assert exits == [70]


def test_a_fault_injected_twice_fires_exactly_twice(bank):
    bank.inject("merchant:m1", "fail", times=2)

    for _ in range(2):
        with pytest.raises(ChannelUnavailable):
            bank.send(instruction())

    assert bank.send(instruction()).status is ChannelStatus.ACCEPTED


def test_a_wildcard_fault_hits_any_party_and_a_partys_own_fault_comes_first(bank):
    bank.inject("*", "reject")
    bank.inject("brand:b1", "fail")

    with pytest.raises(ChannelUnavailable):
        bank.send(instruction(party="brand:b1"))
    with pytest.raises(ChannelRejected):
        bank.send(instruction(party="platform"))

    assert bank.send(instruction(party="merchant:m1")).status is ChannelStatus.ACCEPTED


def test_a_fault_for_one_party_leaves_the_others_alone(bank):
    bank.inject("merchant:m1", "fail")

    assert bank.send(instruction(party="merchant:m2")).status is ChannelStatus.ACCEPTED
    with pytest.raises(ChannelUnavailable):
        bank.send(instruction(party="merchant:m1"))


def test_a_single_fault_fires_once_under_concurrent_sends(ddb, bank):
    bank = SimulatedBank(OneRequestAtATime(ddb), TABLE)
    bank.inject("*", "fail")
    start = threading.Barrier(16)

    def send(n):
        start.wait()
        try:
            bank.send(instruction(party=f"merchant:m{n}"))
        except ChannelUnavailable:
            return "failed"
        return "paid"

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(send, range(16)))

    assert outcomes.count("failed") == 1
    assert len(bank.accepted()) == 15


def test_cleared_faults_no_longer_fire(bank):
    bank.inject("*", "fail", times=5)
    bank.inject("merchant:m1", "reject")

    bank.clear_faults()

    assert bank.send(instruction()).status is ChannelStatus.ACCEPTED


@pytest.mark.parametrize(
    ("mode", "kwargs"), [("explode", {}), ("fail", {"times": 0}), ("slow", {"delay_ms": -1})]
)
def test_a_fault_that_cannot_fire_is_refused(bank, mode, kwargs):
    with pytest.raises(ValueError):
        bank.inject("*", mode, **kwargs)


# -- choosing the channel ----------------------------------------------------------------------------


def test_a_simulated_tenant_gets_the_simulated_bank_on_its_table(ddb):
    import coupons.data.clients

    coupons.data.clients.reset()  # made inside moto, not by an earlier test
    try:
        channel = channel_from_environment({"PAYMENT_CHANNEL": "simulated", "BANK_TABLE_NAME": TABLE})
        receipt = channel.send(instruction())
    finally:
        coupons.data.clients.reset()

    assert isinstance(channel, SimulatedBank)
    assert SimulatedBank(ddb, TABLE).status(receipt.instruction_id) == receipt
