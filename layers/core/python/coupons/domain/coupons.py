"""Coupons (卡券): who may be issued one, what a new one holds, its state, and who sees what of it."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from coupons.domain.campaigns import CampaignStatus, CampaignType
from coupons.domain.errors import Conflict, DomainError, Kind, NotFound
from coupons.domain.principals import Principal, Role
from coupons.domain.times import iso  # noqa: F401  (re-exported: callers import it from here)
from coupons.domain.times import parse as _parse


class CouponState(StrEnum):
    ISSUED = "ISSUED"
    HELD = "HELD"  # a single-use coupon under a redemption hold (domain/redemption_holds.py)
    REDEEMED = "REDEEMED"
    PARTIALLY_USED = "PARTIALLY_USED"  # a gift card with balance left
    EXPIRED = "EXPIRED"  # never stored: read from valid_until
    VOID = "VOID"


class CampaignNotActive(Conflict):
    code = "campaign_not_active"
    title = "The campaign is not issuing coupons (not ACTIVE)"


class OutsideIssuanceWindow(Conflict):
    code = "outside_issuance_window"
    title = "The campaign's issuance window is not open"


class CampaignExhausted(Conflict):
    code = "campaign_exhausted"
    title = "The campaign has no coupons left (quantity or budget)"


class PerUserLimitReached(Conflict):
    code = "per_user_limit_reached"
    title = "This user already holds as many coupons of this campaign as it allows"


class UserNotEligible(DomainError):
    kind = Kind.UNPROCESSABLE
    code = "user_not_eligible"
    title = "The campaign is targeted and this user is not in its audience"


class CouponNotFound(NotFound):
    code = "coupon_not_found"
    title = "No such coupon"


class CouponNotVoidable(Conflict):
    code = "coupon_not_voidable"
    title = "Only an unused coupon can be voided"


def check_issuable(campaign: dict[str, Any], now: datetime) -> None:
    """What the campaign's own terms say about issuing now. Its live status (ACTIVE) is enforced by the
    issuance write itself; this is the early answer from the (immutable) terms."""
    if campaign["status"] != CampaignStatus.ACTIVE:
        raise CampaignNotActive(f"the campaign is {campaign['status']}")
    starts, ends = campaign.get("issuance_starts_at"), campaign.get("issuance_ends_at")
    if (starts and now < _parse(starts)) or (ends and now >= _parse(ends)):
        raise OutsideIssuanceWindow()
    if campaign.get("valid_until") and now >= _parse(campaign["valid_until"]):
        raise OutsideIssuanceWindow("the campaign's coupons have expired: none can be issued")


def check_audience(campaign: dict[str, Any], user_id: str, segment: str | None) -> None:
    users, segments = campaign.get("eligible_users"), campaign.get("eligible_segments")
    if users is None and segments is None:
        return
    if (users and user_id in users) or (segments and segment in segments):
        return
    raise UserNotEligible(field="user_id")


def new_coupon(
    campaign: dict[str, Any], *, code: str, user_id: str, issued_by: str, now: datetime, shard: int
) -> dict[str, Any]:
    valid_from = campaign.get("valid_from") or iso(now)
    valid_until = campaign.get("valid_until") or iso(now + timedelta(days=campaign["valid_days"]))
    record: dict[str, Any] = {
        "code": code,
        "campaign_id": campaign["campaign_id"],
        "brand_id": campaign["brand_id"],
        "user_id": user_id,
        "type": campaign["type"],
        "currency": campaign["currency"],
        "face_value": campaign["face_value"],
        "state": CouponState.ISSUED.value,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "issued_at": iso(now),
        "issued_by": issued_by,
        "shard": shard,
        "history": [{"at": iso(now), "event": "ISSUED", "by": issued_by}],
    }
    if campaign["type"] == CampaignType.GIFT_CARD:
        record["balance"] = campaign["amount"]
    return record


def state_at(coupon: dict[str, Any], now: datetime) -> CouponState:
    state = CouponState(coupon["state"])
    if state in (CouponState.ISSUED, CouponState.PARTIALLY_USED) and now >= _parse(coupon["valid_until"]):
        return CouponState.EXPIRED
    return state


def can_see(coupon: dict[str, Any], principal: Principal) -> bool:
    """Admin: all; an issuer: its brand's; a merchant: any code a customer shows it (limited view)."""
    if principal.role is Role.ISSUER:
        return coupon["brand_id"] == principal.brand_id
    return True


def view(
    coupon: dict[str, Any], campaign: dict[str, Any], principal: Principal, now: datetime
) -> dict[str, Any]:
    shown = {k: v for k, v in coupon.items() if k != "shard"}
    shown["state"] = state_at(coupon, now).value
    if principal.role is Role.MERCHANT:
        # What a till needs to serve the customer: can it be used here, for what. Not who owns it.
        eligible = campaign.get("eligible_merchants")
        terms = ("type", "currency", "amount", "percent_bps", "max_discount", "min_order")
        return {
            "code": coupon["code"],
            "campaign_id": coupon["campaign_id"],
            "state": shown["state"],
            "valid_from": coupon["valid_from"],
            "valid_until": coupon["valid_until"],
            "eligible_here": eligible is None or principal.merchant_id in eligible,
            "terms": {k: campaign[k] for k in terms if k in campaign},
            **({"balance": coupon["balance"]} if "balance" in coupon else {}),
            **({"available": coupon["available"]} if "available" in coupon else {}),
        }
    return shown


def check_voidable(coupon: dict[str, Any], principal: Principal) -> None:
    principal.require(Role.ADMIN, Role.ISSUER)
    if coupon["state"] != CouponState.ISSUED:
        raise CouponNotVoidable(f"the coupon is {coupon['state']}")
