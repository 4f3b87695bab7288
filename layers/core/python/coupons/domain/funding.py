"""Funding rules (分摊规则): who bears what share of a discount, by basis points, versioned.

A rule version gives PLATFORM / BRAND / MERCHANT shares summing to exactly 10,000 bps, optionally
overridden for some merchants and for time windows. Versions are immutable: a change is a new version
effective from a time, and the version in force at a redemption's time is the one applied.
Precedence, most specific first: a merchant override, then a time window, then the default shares.

Who may fund what: a share borne by anyone but the campaign's brand is not the brand's to set. A version
an issuer writes in which its brand bears everything is APPROVED as written; one that gives any share to
the platform or the merchant is PROPOSED, and nothing uses it until an admin approves it. An admin's
versions are APPROVED. Only approved versions are ever in force.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from coupons.domain.errors import Conflict, DomainError, InvalidField, Kind, NotFound
from coupons.domain.principals import ID_PATTERN
from coupons.domain.times import UtcTime
from coupons.domain.times import parse as _utc

# The documented tie-break of every split: equal remainders go to the parties in this order.
PARTIES = ("PLATFORM", "BRAND", "MERCHANT")
TOTAL_BPS = 10_000

Bps = Annotated[StrictInt, Field(ge=0, le=TOTAL_BPS)]
# Versions a rule may have: each clearing reads them all, so the list must not grow without end.
MAX_VERSIONS = 100


class VersionStatus(StrEnum):
    APPROVED = "APPROVED"  # in force from its effective_from
    PROPOSED = "PROPOSED"  # commits another party's money: waits for an admin, never in force


class FundingRuleNotApproved(DomainError):
    kind = Kind.UNPROCESSABLE
    code = "funding_rule_not_approved"
    title = "The funding rule has no approved version yet: an admin must approve it first"


class TooManyVersions(Conflict):
    code = "funding_rule_version_limit"
    title = f"A funding rule holds at most {MAX_VERSIONS} versions; create a new rule"


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
    brand_id: Annotated[StrictStr, Field(pattern=ID_PATTERN)] | None = Field(
        default=None, description="the brand whose rule this is (an issuer's own when it creates one)"
    )
    brand_ids: (
        Annotated[list[Annotated[StrictStr, Field(pattern=ID_PATTERN)]], Field(min_length=1, max_length=1000)]
        | None
    ) = Field(
        default=None,
        description="a platform rule (admin, no brand_id): the brands whose campaigns may use it",
    )

    @field_validator("brand_ids")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not contain duplicates")
        return value


def check_version(terms: RuleVersionTerms) -> None:
    """Rules a field's schema cannot say; raises InvalidField naming the field."""
    if isinstance(terms, RuleTerms) and terms.brand_id is not None and terms.brand_ids is not None:
        raise InvalidField(
            "a brand's rule serves that brand only: brand_ids is for platform rules", field="brand_ids"
        )
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


def brand_bears_all(terms: RuleVersionTerms) -> bool:
    """True when every set of shares in the version (default, overrides, windows) is the brand's alone."""
    every = [
        terms.shares,
        *(terms.merchant_overrides or {}).values(),
        *(w.shares for w in terms.windows or []),
    ]
    return all(shares.PLATFORM == 0 and shares.MERCHANT == 0 for shares in every)


def status_when_made(terms: RuleVersionTerms, *, by_admin: bool) -> VersionStatus:
    return VersionStatus.APPROVED if by_admin or brand_bears_all(terms) else VersionStatus.PROPOSED


def is_approved(version: dict[str, Any]) -> bool:
    """A version written before approvals existed (no `status`) is judged as it would be now: made by an
    admin, or its brand bears everything."""
    status = version.get("status")
    if status is not None:
        return status == VersionStatus.APPROVED
    if version.get("created_by") == "admin":
        return True
    terms = RuleVersionTerms.model_validate(
        {k: version[k] for k in ("shares", "merchant_overrides", "windows") if version.get(k) is not None}
    )
    return brand_bears_all(terms)


def next_whole_second(moment: datetime) -> datetime:
    """The first whole second not before `moment`. Redemptions are stamped in whole seconds (truncated):
    a version starting at the *start* of the current second would apply to a redemption made earlier in
    that second, which was stamped with the same second."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def version_in_force(versions: list[dict[str, Any]], at: datetime) -> dict[str, Any]:
    """The approved version whose effective_from is the latest at or before `at` (versions: any order).
    A proposed version is never in force, whatever its effective_from."""
    eligible = [v for v in versions if is_approved(v) and _utc(v["effective_from"]) <= at]
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
