"""Channel fees (手续费): what a payment channel charges per transfer, and who bears it.

A tenant file gives, per channel, basis points of the transfer with a minimum and a maximum per
transfer (per currency, minor units) and who bears the fee: the party (a payout arrives short by the
fee, a collection takes the fee on top) or the platform. The fee is rounded down to the minor unit,
then raised to the minimum and lowered to the maximum, and never exceeds the transfer itself. Its legs
(`fees:{channel} +f`, and `platform −f` when the platform bears it) ride in the transfer's own journal (coupons/domain/transfer_journals.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from coupons.domain.ledger import Leg
from coupons.domain.money import Currency

TOTAL_BPS = 10_000
Amount = Annotated[StrictInt, Field(ge=0, le=10**12)]


class Bearer(StrEnum):
    PARTY = "PARTY"  # deducted from a payout, added to a collection
    PLATFORM = "PLATFORM"  # the platform's cost; the party moves its net


class FeeSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bps: Annotated[StrictInt, Field(ge=0, le=TOTAL_BPS)]
    minimum: dict[Currency, Amount] = Field(default_factory=dict)  # per transfer; absent = 0
    maximum: dict[Currency, Amount] = Field(default_factory=dict)  # per transfer; absent = no cap
    borne_by: Bearer

    @model_validator(mode="after")
    def _maximum_not_below_minimum(self) -> FeeSchedule:
        for currency, cap in self.maximum.items():
            if cap < self.minimum.get(currency, 0):
                raise ValueError(f"maximum.{currency} is below minimum.{currency}")
        return self


@dataclass(frozen=True)
class Fee:
    channel: str
    currency: str
    amount: int
    borne_by: Bearer

    def legs(self) -> tuple[Leg, ...]:
        """The channel is owed the fee. The platform bearing it owes it; a party bearing it pays it
        through what the channel moves (short on a payout, on top of a collection), so the party's
        own leg is its net either way."""
        if self.amount == 0:
            return ()
        owed = (Leg(fees_account(self.channel), self.amount),)
        return owed if self.borne_by is Bearer.PARTY else (*owed, Leg("platform", -self.amount))


def fees_account(channel: str) -> str:
    return f"fees:{channel}"


def charge(schedule: FeeSchedule | None, channel: str, amount: int, currency: str) -> Fee:
    """The fee on a transfer of `amount` (> 0) through `channel`; no schedule: no fee."""
    if type(amount) is not int or amount <= 0:
        raise ValueError("a transfer is a positive integer of minor units")
    if schedule is None:
        return Fee(channel, currency, 0, Bearer.PLATFORM)
    fee = max(amount * schedule.bps // TOTAL_BPS, schedule.minimum.get(currency, 0))
    cap = schedule.maximum.get(currency)
    if cap is not None:
        fee = min(fee, cap)
    return Fee(channel, currency, min(fee, amount), schedule.borne_by)


def check_fees_below_minimum(channel: str, schedule: FeeSchedule, minimum_transfer: dict[str, int]) -> None:
    """A fee the party bears must leave it something of the smallest payout the tenant makes: a
    minimum fee at or above the minimum transfer could swallow a payout whole. ValueError if not."""
    if schedule.borne_by is not Bearer.PARTY:
        return
    for currency, least_fee in schedule.minimum.items():
        if least_fee and least_fee >= minimum_transfer.get(currency, 0):
            raise ValueError(
                f"channel_fees.{channel}.minimum.{currency} ({least_fee}) must be below "
                f"settlement_minimum_transfer.{currency} when the party bears the fee"
            )
