"""Platform commission (平台抽成): the platform's cut of a merchant's coupon revenue, by schedule.

A schedule (admin only) is versioned like a funding rule: a version is never edited, takes effect from
`effective_from` (now or later, never in the past), and the version in force at the redemption's time
applies. A version holds a default (or none: no commission) and rules by merchant and/or campaign;
the most specific match wins: merchant + campaign, then campaign, then merchant, then the default.
Terms: basis points of the order amount or of the discount, rounded down to the minor unit, raised
to the per-redemption minimum, lowered to the maximum (per currency), and never more than the order.

Posted in the redemption's own journal (`merchant:M −c`, `platform +c`, coupons/domain/ledger.py).
A refund gives back its part of what is still charged by the largest-remainder rule of every split
(`money.split`): what is left charged is split between the part of the order refunded now and the part
still kept, ties to the refund; a refund of the rest gives back all that is left. So refunds never give
back more than was charged, and refunding the whole order gives back exactly c.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from coupons.domain.errors import InvalidField
from coupons.domain.funding import next_whole_second
from coupons.domain.money import Currency, split
from coupons.domain.principals import ID_PATTERN
from coupons.domain.times import UtcTime
from coupons.domain.times import parse as _utc

TOTAL_BPS = 10_000
Amount = Annotated[StrictInt, Field(ge=0, le=10**12)]
Id = Annotated[StrictStr, Field(pattern=ID_PATTERN)]


class Basis(StrEnum):
    ORDER = "ORDER"  # of the order amount
    DISCOUNT = "DISCOUNT"  # of the coupon's discount (a gift card: of the amount taken)


class CommissionTerms(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    basis: Basis
    bps: Annotated[StrictInt, Field(ge=0, le=TOTAL_BPS)]
    minimum: dict[Currency, Amount] = Field(default_factory=dict)  # per redemption; absent = 0
    maximum: dict[Currency, Amount] = Field(default_factory=dict)  # per redemption; absent = no cap

    @model_validator(mode="after")
    def _maximum_not_below_minimum(self) -> CommissionTerms:
        for currency, cap in self.maximum.items():
            if cap < self.minimum.get(currency, 0):
                raise ValueError(f"maximum.{currency} is below minimum.{currency}")
        return self


class CommissionRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    merchant_id: Id | None = None
    campaign_id: Id | None = None
    terms: CommissionTerms


class ScheduleVersionTerms(BaseModel):
    """One version of the schedule, as an admin sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: CommissionTerms | None = None  # None: what no rule matches pays no commission
    rules: Annotated[list[CommissionRule], Field(max_length=1000)] = Field(default_factory=list)
    effective_from: UtcTime | None = None  # omitted = the next whole second; never in the past


def check_version(terms: ScheduleVersionTerms, *, now: datetime) -> datetime:
    """Rules a schema cannot say; returns when the version takes effect. InvalidField names the field."""
    seen: set[tuple[str | None, str | None]] = set()
    for i, rule in enumerate(terms.rules):
        key = (rule.merchant_id, rule.campaign_id)
        if key == (None, None):
            raise InvalidField("a rule names a merchant_id, a campaign_id or both", field=f"rules.{i}")
        if key in seen:
            raise InvalidField("two rules for the same merchant and campaign", field=f"rules.{i}")
        seen.add(key)
    # Redemptions are stamped in whole seconds: starting at the current second would reach back.
    earliest = next_whole_second(now)
    if terms.effective_from is None:
        return earliest
    if terms.effective_from < earliest:
        raise InvalidField("a commission version never applies to the past", field="effective_from")
    return terms.effective_from


def version_in_force(versions: list[dict[str, Any]], at: datetime) -> dict[str, Any] | None:
    """The version whose effective_from is the latest at or before `at`; None: no commission then."""
    eligible = [v for v in versions if _utc(v["effective_from"]) <= at]
    return max(eligible, key=lambda v: (_utc(v["effective_from"]), v["version"]), default=None)


def terms_for(
    version: dict[str, Any], *, merchant_id: str, campaign_id: str
) -> tuple[CommissionTerms | None, str]:
    """The terms that apply and where they came from (most specific first)."""
    rules = {(r.get("merchant_id"), r.get("campaign_id")): r for r in version.get("rules") or []}
    for key, source in (
        ((merchant_id, campaign_id), f"merchant:{merchant_id}+campaign:{campaign_id}"),
        ((None, campaign_id), f"campaign:{campaign_id}"),
        ((merchant_id, None), f"merchant:{merchant_id}"),
    ):
        if key in rules:
            return CommissionTerms.model_validate(rules[key]["terms"]), source
    default = version.get("default")
    return (CommissionTerms.model_validate(default), "default") if default else (None, "default")


def amount_for(terms: CommissionTerms, *, order_amount: int, discount: int, currency: str) -> int:
    """The commission on one redemption, in minor units of its currency."""
    base = order_amount if terms.basis is Basis.ORDER else discount
    fee = max(base * terms.bps // TOTAL_BPS, terms.minimum.get(currency, 0))
    cap = terms.maximum.get(currency)
    if cap is not None:
        fee = min(fee, cap)
    # A minimum never charges more than the merchant took in for the order.
    return min(fee, order_amount)


@dataclass(frozen=True)
class Commission:
    amount: int
    schedule_version: int
    source: str  # which rule of the version: default / merchant:… / campaign:… / both
    basis: str
    bps: int

    def as_record(self) -> dict[str, Any]:
        return {
            "amount": self.amount,
            "version": self.schedule_version,
            "source": self.source,
            "basis": self.basis,
            "bps": self.bps,
        }


def for_redemption(
    versions: list[dict[str, Any]], redemption: dict[str, Any], at: datetime
) -> Commission | None:
    """The commission of a redemption under the schedule's versions; None when none applies."""
    version = version_in_force(versions, at)
    if version is None:
        return None
    terms, source = terms_for(
        version, merchant_id=redemption["merchant_id"], campaign_id=redemption["campaign_id"]
    )
    if terms is None:
        return None
    amount = amount_for(
        terms,
        order_amount=redemption["order_amount"],
        discount=redemption["discount"],
        currency=redemption["currency"],
    )
    return Commission(amount, version["version"], source, terms.basis.value, terms.bps)


def given_back(
    *, charged: int, given_back_before: int, order_amount: int, refunded_before: int, refund: int
) -> int:
    """What a refund of `refund` (of the order) gives back of a commission `charged`, of which
    `given_back_before` went back with the `refunded_before` refunded earlier. Largest remainder over
    (refunded now, still kept), ties to the refund: never more than is left; the last refund takes all."""
    left = charged - given_back_before
    remaining = order_amount - refunded_before
    if left < 0 or refund <= 0 or refund > remaining:
        raise ValueError("a refund is more than the order has left, or more was given back than charged")
    if left == 0:
        return 0
    if refund == remaining:
        return left
    return split(left, [("refund", refund), ("kept", remaining - refund)])["refund"]
