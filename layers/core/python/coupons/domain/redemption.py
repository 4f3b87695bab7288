"""Redemption (核销) and reversal (冲正): what an order gets off, whether a coupon may be used here, and
how much of a discount a refund gives back. Pure: amounts are integers in minor units throughout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from coupons.domain.campaigns import CampaignType
from coupons.domain.errors import Conflict, DomainError, Forbidden, Kind
from coupons.domain.principals import Principal, Role


class Method(StrEnum):
    CODE = "CODE"
    QR_TOKEN = "QR_TOKEN"
    DYNAMIC_CODE = "DYNAMIC_CODE"


class Unprocessable(DomainError):
    kind = Kind.UNPROCESSABLE


class OrderBelowMinimum(Unprocessable):
    code = "order_below_minimum"
    title = "The order is below the coupon's minimum"


class CurrencyMismatch(Unprocessable):
    code = "currency_mismatch"
    title = "The order's currency is not the coupon's"


class MethodNotAllowed(Unprocessable):
    code = "verification_method_not_allowed"
    title = "This campaign does not accept this way of verifying the coupon"


class MerchantNotEligible(Forbidden):
    code = "merchant_not_eligible"
    title = "The coupon cannot be used at this merchant"


class CouponAlreadyRedeemed(Conflict):
    code = "coupon_already_redeemed"
    title = "The coupon has been redeemed already"


class CouponHeld(Conflict):
    code = "coupon_held"
    title = "The coupon is held by a redemption hold: it is used when the hold is captured, free when voided"


class CouponVoid(Conflict):
    code = "coupon_void"
    title = "The coupon has been voided"


class CouponExpired(Conflict):
    code = "coupon_expired"
    title = "The coupon has expired"


class CouponNotYetValid(Conflict):
    code = "coupon_not_yet_valid"
    title = "The coupon is not valid yet"


class BalanceExhausted(Conflict):
    code = "gift_card_balance_exhausted"
    title = "The gift card has no balance left"


class CampaignNotRedeemable(Conflict):
    code = "campaign_not_active"
    title = "The campaign is paused or ended: its coupons cannot be used now"


class DiscountZero(Unprocessable):
    code = "discount_zero"
    title = "The order is too small for this coupon to take anything off (the discount rounds to 0)"


class ReversalExceedsOrder(Unprocessable):
    code = "reversal_exceeds_remaining"
    title = "The amount is more than what remains of the order to refund"


def check_merchant(principal: Principal, merchant_id: str) -> None:
    """A merchant acts only for itself; an admin for any merchant (support); issuers never redeem."""
    principal.require(Role.ADMIN, Role.MERCHANT)
    if principal.role is Role.MERCHANT and principal.merchant_id != merchant_id:
        raise Forbidden("a merchant redeems for itself only", field="merchant_id")


def check_terms(
    campaign: dict[str, Any], *, merchant_id: str, order_amount: int, currency: str, method: Method
) -> None:
    """What the campaign's immutable terms say about this order, before anything is written."""
    if method.value not in campaign.get("verification_methods", [Method.CODE.value]):
        raise MethodNotAllowed(f"{method.value} is not accepted by this campaign", field="verification")
    if currency != campaign["currency"]:
        raise CurrencyMismatch(f"the coupon is in {campaign['currency']}", field="currency")
    eligible = campaign.get("eligible_merchants")
    if eligible is not None and merchant_id not in eligible:
        raise MerchantNotEligible(field="merchant_id")
    if order_amount < campaign.get("min_order", 0):
        raise OrderBelowMinimum(f"the minimum order is {campaign['min_order']}", field="order_amount")


def discount(campaign: dict[str, Any], order_amount: int) -> int:
    """The discount an order gets from a FIXED / PERCENT / THRESHOLD coupon (never above the order).

    PERCENT rounds down to the minor unit, then caps at max_discount. THRESHOLD's minimum is checked
    by check_terms (min_order)."""
    kind = CampaignType(campaign["type"])
    if kind is CampaignType.PERCENT:
        return min(order_amount * campaign["percent_bps"] // 10_000, campaign["max_discount"], order_amount)
    if kind in (CampaignType.FIXED, CampaignType.THRESHOLD):
        return min(campaign["amount"], order_amount)
    raise ValueError("a gift card takes from its balance: use gift_card_take")


def check_discount(amount: int) -> None:
    """A coupon is used up only for a discount: a PERCENT coupon on a tiny order (5 % of 19) rounds to
    0, and using it then would spend it for nothing."""
    if amount <= 0:
        raise DiscountZero(field="order_amount")


def gift_card_take(balance: int, order_amount: int, requested: int | None = None) -> int:
    """What a gift card pays: the asked amount or the order, never more than the balance."""
    wanted = order_amount if requested is None else min(requested, order_amount)
    return min(balance, wanted)


def reversal_share(discount_amount: int, order_amount: int, refunded_before: int, refund: int) -> int:
    """The part of the discount a refund of `refund` gives back, after `refunded_before` was refunded.

    Cumulative floor rule: after refunds totalling R of an order O, floor(D × R / O) of the discount D
    has been given back. Each reversal gives the difference, so partial reversals never sum to more
    than D, and refunding the whole order gives back exactly D."""
    if refund <= 0 or refunded_before + refund > order_amount:
        raise ReversalExceedsOrder(field="amount")
    after = discount_amount * (refunded_before + refund) // order_amount
    before = discount_amount * refunded_before // order_amount
    return after - before


def business_date(moment: datetime, time_zone: str) -> str:
    """The tenant's calendar date of `moment`: what settlement cycles (T+N) count from."""
    return moment.astimezone(ZoneInfo(time_zone)).date().isoformat()


@dataclass(frozen=True, slots=True)
class Verification:
    method: Method
    owner: str | None = None  # a QR token binds the holder
    totp_step: int | None = None  # a dynamic code's time step, usable once
    qr_nonce: str | None = None
    qr_expires_at: int | None = None


def refusal_from_coupon(coupon: dict[str, Any], *, now_iso: str) -> DomainError:
    """Why the coupon's condition failed, read from the coupon as it is (ALL_OLD): no extra read."""
    state = coupon.get("state")
    if state == "REDEEMED" and coupon.get("type") != CampaignType.GIFT_CARD:  # a used-up card: below
        return CouponAlreadyRedeemed(field="code")
    if state == "VOID":
        return CouponVoid(field="code")
    if state == "HELD":
        return CouponHeld(field="code")
    if coupon.get("valid_until", "") <= now_iso:
        return CouponExpired(field="code")
    if coupon.get("valid_from", "") > now_iso:
        return CouponNotYetValid(field="code")
    if coupon.get("type") == CampaignType.GIFT_CARD and coupon.get("balance", 0) <= 0:
        return BalanceExhausted(field="code")
    from coupons.domain.verification import VerificationFailed

    return VerificationFailed()
