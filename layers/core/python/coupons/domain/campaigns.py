"""Campaigns (券批次): the coupon template — type and terms, limits, validity, funding, settlement cycle."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from coupons.domain.codes import PREFIX_PATTERN, new_tag
from coupons.domain.errors import Conflict, Forbidden, InvalidField
from coupons.domain.ids import new_id
from coupons.domain.money import MAX_AMOUNT, Currency, split
from coupons.domain.principals import ID_PATTERN, Principal, Role
from coupons.domain.redemption_holds import MAX_HOLD_SECONDS
from coupons.domain.times import UtcTime, iso


class CampaignType(StrEnum):
    FIXED = "FIXED"  # 代金券: `amount` off, never more than the order
    PERCENT = "PERCENT"  # 折扣券: `percent_bps` of the order, rounded down, capped by `max_discount`
    THRESHOLD = "THRESHOLD"  # 满减: `amount` off when the order is at least `min_order`
    GIFT_CARD = "GIFT_CARD"  # 礼品卡: a stored balance of `amount`


class CampaignStatus(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ENDED = "ENDED"


class VerificationMethod(StrEnum):
    CODE = "CODE"  # the plain code (barcode)
    QR_TOKEN = "QR_TOKEN"  # a signed short-lived token
    DYNAMIC_CODE = "DYNAMIC_CODE"  # TOTP from the holder's app


PartyId = Annotated[StrictStr, Field(pattern=ID_PATTERN)]
UserId = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
Amount = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT, description="integer minor units")]
AmountOrZero = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT, description="integer minor units")]


class CampaignTerms(BaseModel):
    """What a client sends to create a campaign. Amounts are integers in the currency's minor units."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    description: Annotated[StrictStr, Field(max_length=2000)] | None = None
    brand_id: PartyId | None = Field(
        default=None, description="the funding brand; an issuer's own brand when omitted by an issuer"
    )
    type: CampaignType
    currency: Currency
    amount: Amount | None = Field(default=None, description="FIXED/THRESHOLD: off; GIFT_CARD: balance")
    percent_bps: Annotated[StrictInt, Field(ge=1, le=10_000)] | None = Field(
        default=None, description="PERCENT: basis points of the order (1..10000)"
    )
    max_discount: Amount | None = Field(default=None, description="PERCENT: cap on the discount")
    min_order: AmountOrZero | None = None
    valid_from: UtcTime | None = None
    valid_until: UtcTime | None = None
    valid_days: Annotated[StrictInt, Field(ge=1, le=3660)] | None = Field(
        default=None, description="validity in days after issue, instead of valid_until"
    )
    issuance_starts_at: UtcTime | None = None
    issuance_ends_at: UtcTime | None = None
    total_quantity: Annotated[StrictInt, Field(ge=1, le=100_000_000)]
    budget: Amount | None = Field(default=None, description="cap on the sum of face values issued")
    per_user_limit: Annotated[StrictInt, Field(ge=1, le=1000)] = 1
    eligible_merchants: Annotated[list[PartyId], Field(min_length=1, max_length=1000)] | None = Field(
        default=None, description="merchant ids where the coupon may be redeemed; omitted = all"
    )
    funding_rule_id: PartyId | None = None
    shards: Annotated[StrictInt, Field(ge=1, le=MAX_SHARDS)] | None = Field(
        default=None,
        description="quota shards (1..64) for a hot campaign; omitted = chosen from the campaign's size",
    )
    code_prefix: Annotated[StrictStr, Field(pattern=PREFIX_PATTERN)] | None = Field(
        default=None, description="printed at the start of every code (1..6 Crockford base32 characters)"
    )
    eligible_users: Annotated[list[UserId], Field(min_length=1, max_length=5000)] | None = Field(
        default=None, description="only these users may be issued a coupon (with eligible_segments: either)"
    )
    eligible_segments: Annotated[list[PartyId], Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="only users issued with one of these `segment`s may get a coupon"
    )
    settlement_cycle: Annotated[StrictStr, Field(pattern=r"^T\+([0-9]|[12][0-9]|30)$")] = Field(
        default="T+1", description="T+N: days after the business date that cleared postings fall due"
    )
    verification_methods: Annotated[list[VerificationMethod], Field(min_length=1, max_length=3)] = [
        VerificationMethod.CODE
    ]
    hold_seconds: Annotated[StrictInt, Field(ge=60, le=MAX_HOLD_SECONDS)] | None = Field(
        default=None,
        description='how long a redemption hold ("capture": false) of its coupons lasts, in seconds'
        " (60 to 604800 = 7 days); omitted = the tenant's default",
    )

    @field_validator("valid_from", "valid_until", "issuance_starts_at", "issuance_ends_at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        # In UTC; stored and answered in the one fixed form (UtcTime), so records compare as strings.
        return value.astimezone(UTC) if value is not None else None

    @field_validator("eligible_merchants", "verification_methods", "eligible_users", "eligible_segments")
    @classmethod
    def _no_duplicates(cls, value: list | None) -> list | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not contain duplicates")
        return value


class Campaign(CampaignTerms):
    """A campaign as the API answers it: its terms and what the service keeps about it."""

    brand_id: PartyId
    campaign_id: StrictStr
    code_tag: StrictStr = Field(description="the 4 characters in each of its codes that name the campaign")
    status: CampaignStatus
    face_value: Amount = Field(description="what one coupon may cost at most (counts against budget)")
    capacity: StrictInt = Field(description="coupons it may issue: total_quantity, or fewer if budget binds")
    shards: StrictInt
    issued_count: StrictInt | None = Field(default=None, description="live; absent in lists")
    budget_used: StrictInt | None = Field(default=None, description="live; absent in lists")
    status_changed_at: AwareDatetime | None = None
    created_at: AwareDatetime
    created_by: StrictStr


class MerchantCampaignView(BaseModel):
    """A campaign as a merchant that may redeem it reads it: what a till needs to take the coupon, and
    nothing about other parties (no eligible users or merchants, budget, funding rule, counters)."""

    campaign_id: StrictStr
    name: StrictStr
    type: CampaignType
    currency: Currency
    amount: Amount | None = None
    percent_bps: StrictInt | None = None
    max_discount: Amount | None = None
    min_order: AmountOrZero | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    valid_days: StrictInt | None = None
    status: CampaignStatus
    settlement_cycle: StrictStr
    verification_methods: list[VerificationMethod]


def merchant_view(campaign: dict[str, Any]) -> dict[str, Any]:
    return {k: campaign[k] for k in MerchantCampaignView.model_fields if k in campaign}


# Which optional money terms each type takes: required ones must be present, the rest absent.
_TERMS_BY_TYPE: dict[CampaignType, tuple[set[str], set[str]]] = {
    #                         required                       allowed besides
    CampaignType.FIXED: ({"amount"}, {"min_order"}),
    CampaignType.PERCENT: ({"percent_bps", "max_discount"}, {"min_order"}),
    CampaignType.THRESHOLD: ({"amount", "min_order"}, set()),
    CampaignType.GIFT_CARD: ({"amount"}, {"min_order"}),
}
_MONEY_TERMS = {"amount", "percent_bps", "max_discount", "min_order"}


def check_terms(terms: CampaignTerms) -> None:
    """Rules across fields that a single field's schema cannot say; raises InvalidField naming one."""
    required, allowed = _TERMS_BY_TYPE[terms.type]
    for field in sorted(required):
        if getattr(terms, field) is None:
            raise InvalidField(f"{field} is required for a {terms.type} campaign", field=field)
    for field in sorted(_MONEY_TERMS - required - allowed):
        if getattr(terms, field) is not None:
            raise InvalidField(f"{field} does not apply to a {terms.type} campaign", field=field)
    if terms.type is CampaignType.THRESHOLD and terms.min_order < terms.amount:
        raise InvalidField("min_order must be at least amount for a THRESHOLD campaign", field="min_order")

    if (terms.valid_until is None) == (terms.valid_days is None):
        field = "valid_days" if terms.valid_days is not None else "valid_until"
        raise InvalidField("give exactly one of valid_until or valid_days", field=field)
    if terms.valid_from is not None and terms.valid_days is not None:
        raise InvalidField("valid_from goes with valid_until, not valid_days", field="valid_from")
    if terms.valid_from and terms.valid_until and terms.valid_until <= terms.valid_from:
        raise InvalidField("valid_until must be after valid_from", field="valid_until")
    starts, ends = terms.issuance_starts_at, terms.issuance_ends_at
    if starts and ends and ends <= starts:
        raise InvalidField("issuance_ends_at must be after issuance_starts_at", field="issuance_ends_at")
    if terms.valid_until and ends and ends > terms.valid_until:
        raise InvalidField("issuance cannot end after the coupons expire", field="issuance_ends_at")

    if terms.budget is not None and terms.budget < face_value(terms):
        raise InvalidField("budget is below the face value of one coupon", field="budget")


def face_value(terms: CampaignTerms) -> int:
    """What one coupon can cost at most: counts against `budget` (PERCENT: its `max_discount`)."""
    return terms.max_discount if terms.type is CampaignType.PERCENT else terms.amount


# A quota shard item takes ~1,000 write units/s and an issuance spends 2 of them on it (a
# transactional write): 500 issuances/s per shard. A campaign of this many coupons or more gets one
# shard per this many when its creator does not choose (see docs/issuance.md).
COUPONS_PER_AUTO_SHARD = 1000
MAX_SHARDS = 64


def capacity(terms: CampaignTerms) -> int:
    """How many coupons the campaign may issue. Every coupon of a campaign has the same face value,
    so the budget is exactly a number of coupons: budget // face value."""
    if terms.budget is None:
        return terms.total_quantity
    return min(terms.total_quantity, terms.budget // face_value(terms))


def shard_count(terms: CampaignTerms) -> int:
    if terms.shards is not None:
        return terms.shards
    return max(1, min(MAX_SHARDS, -(-capacity(terms) // COUPONS_PER_AUTO_SHARD)))


def shard_capacities(campaign: dict[str, Any]) -> list[int]:
    """The campaign's capacity spread over its shards as evenly as integers allow (sums exactly)."""
    shares = split(campaign["capacity"], [(i, 1) for i in range(campaign["shards"])])
    return [shares[i] for i in range(campaign["shards"])]


class InvalidTransition(Conflict):
    code = "invalid_status_transition"
    title = "The campaign cannot make this status change from its current status"


# Lifecycle: DRAFT → ACTIVE → PAUSED ↔ ACTIVE → ENDED (a draft may also be ended unused).
TRANSITIONS: dict[str, tuple[frozenset[CampaignStatus], CampaignStatus]] = {
    "activate": (frozenset({CampaignStatus.DRAFT, CampaignStatus.PAUSED}), CampaignStatus.ACTIVE),
    "pause": (frozenset({CampaignStatus.ACTIVE}), CampaignStatus.PAUSED),
    "end": (
        frozenset({CampaignStatus.DRAFT, CampaignStatus.ACTIVE, CampaignStatus.PAUSED}),
        CampaignStatus.ENDED,
    ),
}


def owning_brand(terms: CampaignTerms, principal: Principal) -> str:
    """The brand a new campaign belongs to: an issuer's own; an admin must name one."""
    principal.require(Role.ADMIN, Role.ISSUER)
    if principal.role is Role.ISSUER:
        if terms.brand_id not in (None, principal.brand_id):
            raise Forbidden("an issuer creates campaigns for its own brand only", field="brand_id")
        return principal.brand_id
    if terms.brand_id is None:
        raise InvalidField("brand_id is required when an admin creates a campaign", field="brand_id")
    return terms.brand_id


def new_campaign(
    terms: CampaignTerms, principal: Principal, *, now: datetime | None = None
) -> dict[str, Any]:
    """The campaign record for `terms` created by `principal`, as plain JSON-ready values."""
    check_terms(terms)
    brand_id = owning_brand(terms, principal)
    created = (now or datetime.now(UTC)).astimezone(UTC)
    record = terms.model_dump(mode="json", exclude_none=True)
    record.update(
        campaign_id=new_id("cmp", now_ms=int(created.timestamp() * 1000)),
        code_tag=new_tag(),
        brand_id=brand_id,
        status=CampaignStatus.DRAFT.value,
        face_value=face_value(terms),
        capacity=capacity(terms),
        shards=shard_count(terms),
        created_at=iso(created),
        created_by=str(principal),
    )
    return record


def can_read(campaign: dict[str, Any], principal: Principal) -> bool:
    """Admin: all. Issuer: its own brand's. Merchant: those it may redeem (to serve a customer)."""
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.ISSUER:
        return campaign["brand_id"] == principal.brand_id
    eligible = campaign.get("eligible_merchants")
    return eligible is None or principal.merchant_id in eligible
