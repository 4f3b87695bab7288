"""Reading a redemption with its reversals, and reversing (冲正 / 退款) all or part of it.

Moved out of services/redemption.py (the checkout hot path) unchanged: a reversal reads the redemption
item alone, computes the discount given back (domain/redemption.py: reversal_share) and commits it with
the Idempotency-Key's completion in one transaction (data/redemptions.py: RedemptionStore.reverse).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coupons.data.coupons import CouponStore
from coupons.data.idempotency import Completion, put_of
from coupons.data.redemptions import CouponBack, RedemptionStore
from coupons.domain import redemption as rules
from coupons.domain.campaigns import CampaignType
from coupons.domain.coupons import iso
from coupons.domain.errors import Contention, NotFound
from coupons.domain.ids import new_id
from coupons.domain.principals import Principal, Role

# Bounded retries: a reversal whose redemption's totals moved under it reads again and recomputes.
ATTEMPTS = 12
# Reversals a read returns at most at once: a redemption may have many partial refunds (each at least
# one minor unit), so they are read page by page.
REVERSALS_PAGE = 20


class RedemptionNotFound(NotFound):
    code = "redemption_not_found"
    title = "No such redemption"


class Reversals:
    def __init__(self, coupons: CouponStore, redemptions: RedemptionStore, *, time_zone: str):
        self._coupons = coupons
        self._redemptions = redemptions
        self._time_zone = time_zone

    # -- read and reverse --------------------------------------------------------------------

    def get(
        self,
        redemption_id: str,
        principal: Principal,
        *,
        limit: int = REVERSALS_PAGE,
        cursor: str | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
        """The redemption, a page of its reversals (oldest first) and the next page's cursor."""
        found = self._redemptions.get(redemption_id, limit=limit, cursor=cursor)
        if found is None or not may_see(found[0], principal):
            raise RedemptionNotFound(field="redemption_id")
        return found

    def reverse(
        self,
        redemption_id: str,
        principal: Principal,
        *,
        amount: int | None,
        restore_coupon: bool,
        completion: Completion | None = None,
    ) -> dict[str, Any]:
        """Refunds `amount` of the order (None: all that remains), giving back the discount in
        proportion (domain/redemption.py: reversal_share). The reversal and the Idempotency-Key's
        completion (if any) are one transaction: a refund whose answer was lost is never made twice."""
        principal.require(Role.ADMIN, Role.MERCHANT)
        for _ in range(ATTEMPTS):
            # The redemption item alone: its totals are what a reversal computes from, however many
            # reversals it already has.
            redemption = self._redemptions.redemption(redemption_id)
            if redemption is None or not may_see(redemption, principal):
                raise RedemptionNotFound(field="redemption_id")
            order, refunded = redemption["order_amount"], redemption.get("refunded_amount", 0)
            refund = order - refunded if amount is None else amount
            share = rules.reversal_share(redemption["discount"], order, refunded, refund)
            moment = datetime.now(UTC)
            reversal = {
                "kind": "REVERSAL",
                "reversal_id": new_id("rvs", now_ms=int(moment.timestamp() * 1000)),
                "redemption_id": redemption_id,
                "refund_amount": refund,
                "discount_reversed": share,
                "reversed_at": iso(moment),
                "business_date": rules.business_date(moment, self._time_zone),
                "reversed_by": str(principal),
                **{
                    k: redemption[k]
                    for k in (
                        "code",
                        "campaign_id",
                        "brand_id",
                        "funding_rule_id",
                        "merchant_id",
                        "store_id",
                        "order_id",
                        "currency",
                        "coupon_type",
                        "settlement_cycle",
                    )
                    if k in redemption
                },
            }
            coupon_back = self._coupon_back(
                redemption, share, refunded + refund == order, restore_coupon, moment
            )
            restored = coupon_back is not None
            reversal["coupon_restored"] = restored
            event = {
                "at": reversal["reversed_at"],
                "event": "REVERSED",
                "redemption_id": redemption_id,
                "reversal_id": reversal["reversal_id"],
                "amount": share,
            }
            if self._redemptions.reverse(
                reversal,
                refunded_before=refunded,
                refunded_after=refunded + refund,
                discount_reversed_after=redemption.get("discount_reversed", 0) + share,
                coupon_back=coupon_back,
                coupon_event=event if restored else None,
                completion=put_of(completion, reversal),
            ):
                return reversal
        raise Contention(field="redemption_id")

    def _coupon_back(
        self, redemption: dict[str, Any], share: int, whole: bool, restore: bool, moment: datetime
    ) -> CouponBack | None:
        """What a reversal gives the coupon back, or None: a gift card gets its share back; a
        single-use coupon goes back to the holder's wallet (券回退) after a whole refund, if asked and
        still valid."""
        coupon = self._coupons.get(redemption["code"])
        if coupon is None:
            return None
        if redemption.get("coupon_type") == CampaignType.GIFT_CARD:
            if share == 0:
                return None
            after = coupon["balance"] + share
            return CouponBack(
                coupon["code"],
                balance_before=coupon["balance"],
                balance_after=after,
                state_after="ISSUED" if after >= coupon["face_value"] else "PARTIALLY_USED",
                available_before=coupon.get("available"),
            )
        still_valid = coupon["valid_until"] > iso(moment)
        if not (
            whole and restore and still_valid and coupon.get("redemption_id") == redemption["redemption_id"]
        ):
            return None
        return CouponBack(coupon["code"], redemption_id=redemption["redemption_id"])


def may_see(redemption: dict[str, Any], principal: Principal) -> bool:
    """Admin; the redeeming merchant; the brand that funds the campaign. Others get a 404."""
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.MERCHANT:
        return redemption["merchant_id"] == principal.merchant_id
    return redemption["brand_id"] == principal.brand_id
