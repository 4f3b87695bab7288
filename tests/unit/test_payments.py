"""Payment instructions: what settlement may ask a channel to move, refused before any bank sees it."""

from dataclasses import FrozenInstanceError, replace

import pytest

from coupons.channels import channel_from_environment
from coupons.domain.payments import (
    ChannelError,
    ChannelRejected,
    ChannelTimeout,
    ChannelUnavailable,
    Direction,
    Instruction,
    InstructionMismatch,
)

PAYOUT = Instruction(
    instruction_id="run-1#merchant:m1",
    run_id="run-1",
    party="merchant:m1",
    currency="CNY",
    amount=12_345,
    direction=Direction.PAYOUT,
    reference="Coupon settlement run-1",
)


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "100", None])
def test_an_instruction_moves_only_a_positive_integer_of_minor_units(amount):
    with pytest.raises(ValueError, match="positive integer"):
        replace(PAYOUT, amount=amount)


def test_an_instruction_in_an_unknown_currency_is_refused():
    with pytest.raises(ValueError, match="currency"):
        replace(PAYOUT, currency="XXY")


@pytest.mark.parametrize("field", ["instruction_id", "run_id", "party"])
def test_an_instruction_without_an_id_run_or_party_is_refused(field):
    with pytest.raises(ValueError, match=field):
        replace(PAYOUT, **{field: ""})


def test_a_stored_direction_string_reads_back_as_the_direction_and_anything_else_is_refused():
    assert replace(PAYOUT, direction="COLLECTION").direction is Direction.COLLECTION
    with pytest.raises(ValueError):
        replace(PAYOUT, direction="SIDEWAYS")


def test_an_instruction_cannot_be_changed_after_it_is_made():
    with pytest.raises(FrozenInstanceError):
        PAYOUT.amount = 1  # type: ignore[misc]


def test_the_same_payment_is_the_same_party_currency_amount_and_direction_whatever_the_text():
    assert PAYOUT.same_payment("merchant:m1", "CNY", 12_345, "PAYOUT")
    assert not PAYOUT.same_payment("merchant:m1", "CNY", 12_346, "PAYOUT")
    assert not PAYOUT.same_payment("merchant:m1", "CNY", 12_345, "COLLECTION")
    assert not PAYOUT.same_payment("merchant:m2", "CNY", 12_345, "PAYOUT")
    assert not PAYOUT.same_payment("merchant:m1", "USD", 12_345, "PAYOUT")


def test_every_channel_failure_is_a_channel_error():
    for error in (ChannelUnavailable, ChannelTimeout, ChannelRejected, InstructionMismatch):
        assert issubclass(error, ChannelError)


@pytest.mark.parametrize("environ", [{}, {"PAYMENT_CHANNEL": "swift"}])
def test_a_tenant_without_a_known_payment_channel_gets_no_channel(environ):
    with pytest.raises(ValueError, match=repr(environ.get("PAYMENT_CHANNEL"))):
        channel_from_environment(environ)
