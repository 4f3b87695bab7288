"""Funding rules (分摊规则): who bears what share of a discount, by basis points, versioned.

A rule version gives PLATFORM / BRAND / MERCHANT shares summing to exactly 10,000 bps, optionally
overridden for some merchants and for time windows. Versions are immutable: a change is a new version
effective from a time, and the version in force at a redemption's time is the one applied.
Precedence, most specific first: a merchant override, then a time window, then the default shares.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from coupons.domain.errors import InvalidField, NotFound
from coupons.domain.principals import ID_PATTERN
from coupons.domain.times import UtcTime
from coupons.domain.times import parse as _utc

# The documented tie-break of every split: equal remainders go to the parties in this order.
PARTIES = ("PLATFORM", "BRAND", "MERCHANT")
TOTAL_BPS = 10_000

Bps = Annotated[StrictInt, Field(ge=0, le=TOTAL_BPS)]


class FundingRuleNotFound(NotFound):
    code = "funding_rule_not_found"
    title = "No such funding rule (or no version in force at that time)"


class Shares(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    PLATFORM: Bps
    BRAND: Bps
    MERCHANT: Bps

    def weights(self) -> list[tuple[str, int]]:
        return [(party, getattr(self, party)) for party in PARTIES]


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    starts_at: UtcTime
    ends_at: UtcTime
    shares: Shares


class RuleVersionTerms(BaseModel):
    """One version of a rule, as a client sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shares: Shares
    merchant_overrides: Annotated[dict[StrictStr, Shares], Field(max_length=1000)] | None = None
    windows: Annotated[list[Window], Field(min_length=1, max_length=100)] | None = None
    effective_from: UtcTime | None = Field(
        default=None, description="when this version takes over; omitted = now. Never in the past."
    )

    @field_validator("merchant_overrides")
    @classmethod
    def _merchant_ids(cls, value: dict | None) -> dict | None:
        import re

        for merchant_id in value or {}:
            if not re.match(ID_PATTERN, merchant_id):
                raise ValueError(f"{merchant_id!r} is not a merchant id")
        return value


class RuleTerms(RuleVersionTerms):
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    brand_id: Annotated[StrictStr, Field(pattern=ID_PATTERN)] | None = None


def check_version(terms: RuleVersionTerms) -> None:
    """Rules a field's schema cannot say; raises InvalidField naming the field."""
    _check_sum(terms.shares, "shares")
    for merchant_id, shares in (terms.merchant_overrides or {}).items():
        _check_sum(shares, f"merchant_overrides.{merchant_id}")
    windows = sorted(terms.windows or [], key=lambda w: w.starts_at)
    for i, window in enumerate(windows):
        field = f"windows.{(terms.windows or []).index(window)}"
        if window.ends_at <= window.starts_at:
            raise InvalidField("ends_at must be after starts_at", field=f"{field}.ends_at")
        _check_sum(window.shares, f"{field}.shares")
        if i and window.starts_at < windows[i - 1].ends_at:
            raise InvalidField("windows of one version must not overlap", field=f"{field}.starts_at")


def _check_sum(shares: Shares, field: str) -> None:
    total = sum(w for _, w in shares.weights())
    if total != TOTAL_BPS:
        raise InvalidField(f"shares must sum to exactly {TOTAL_BPS} bps, not {total}", field=field)


def version_in_force(versions: list[dict[str, Any]], at: datetime) -> dict[str, Any]:
    """The version whose effective_from is the latest at or before `at` (versions: any order)."""
    eligible = [v for v in versions if _utc(v["effective_from"]) <= at]
    if not eligible:
        raise FundingRuleNotFound(field="funding_rule_id")
    return max(eligible, key=lambda v: (_utc(v["effective_from"]), v["version"]))


def shares_for(version: dict[str, Any], *, merchant_id: str, at: datetime) -> tuple[Shares, str]:
    """The shares that apply, and where they came from (merchant override / window / default)."""
    overrides = version.get("merchant_overrides") or {}
    if merchant_id in overrides:
        return Shares.model_validate(overrides[merchant_id]), f"merchant:{merchant_id}"
    for window in version.get("windows") or []:
        if _utc(window["starts_at"]) <= at < _utc(window["ends_at"]):
            return Shares.model_validate(window["shares"]), f"window:{window['starts_at']}"
    return Shares.model_validate(version["shares"]), "default"
