"""Reading a coupon, a user's wallet, voiding."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coupons.data.campaigns import CampaignStore
from coupons.data.coupons import CouponStore
from coupons.domain import codes
from coupons.domain import coupons as rules
from coupons.domain.coupons import CouponNotFound, iso
from coupons.domain.principals import Principal, Role


def _found(store: CouponStore, typed_code: str, principal: Principal) -> dict[str, Any]:
    code = codes.normalize(typed_code)  # a typo is refused here, before any read
    coupon = store.get(code)
    if coupon is None or not rules.can_see(coupon, principal):
        raise CouponNotFound(field="code")
    return coupon


def get(
    coupons: CouponStore, campaigns: CampaignStore, typed_code: str, principal: Principal
) -> dict[str, Any]:
    coupon = _found(coupons, typed_code, principal)
    campaign = campaigns.get(coupon["campaign_id"]) if principal.role is Role.MERCHANT else {}
    return rules.view(coupon, campaign, principal, datetime.now(UTC))


def void(coupons: CouponStore, typed_code: str, principal: Principal, reason: str | None) -> dict[str, Any]:
    principal.require(Role.ADMIN, Role.ISSUER)
    coupon = _found(coupons, typed_code, principal)
    rules.check_voidable(coupon, principal)
    now = datetime.now(UTC)
    event = {
        "at": iso(now),
        "event": "VOIDED",
        "by": str(principal),
        **({"reason": reason} if reason else {}),
    }
    voided = coupons.void(coupon["code"], event)
    if voided is None:  # used or voided between our read and the write: the write's condition decided
        raise rules.CouponNotVoidable(f"the coupon is {coupons.get(coupon['code'])['state']}")
    return rules.view(voided, {}, principal, now)


def wallet(
    coupons: CouponStore,
    user_id: str,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    state: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Admin: every coupon of the user; an issuer: its brand's only."""
    principal.require(Role.ADMIN, Role.ISSUER)
    now = datetime.now(UTC)
    items, next_cursor = coupons.wallet(
        user_id, limit=limit, cursor=cursor, brand_id=principal.brand_id, state=state, now=iso(now)
    )
    return [rules.view(c, {}, principal, now) for c in items], next_cursor
