"""Reading a coupon, a user's wallet, voiding."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coupons.data.campaigns import CampaignStore
from coupons.data.coupons import CouponStore
from coupons.data.idempotency import Completion, put_of
from coupons.domain import codes, verification
from coupons.domain import coupons as rules
from coupons.domain.coupons import CouponNotFound, iso
from coupons.domain.errors import Conflict
from coupons.domain.principals import Principal, Role
from coupons.domain.redemption import MethodNotAllowed


def _found(store: CouponStore, typed_code: str, principal: Principal) -> dict[str, Any]:
    code = codes.normalize(typed_code)  # a typo is refused here, before any read
    coupon = store.get(code)
    if coupon is None or not rules.can_see(coupon, principal):
        raise CouponNotFound(field="code")
    return coupon


# The events a coupon's read shows (its latest); the rest are a cursor away (GET …/history).
HISTORY_IN_VIEW = 20


def _with_history(coupons: CouponStore, coupon: dict[str, Any]) -> dict[str, Any]:
    """The coupon with its latest HISTORY_IN_VIEW events, oldest first (the order `history` always
    had), and `history_next_cursor`: where GET /v1/coupons/{code}/history continues, older, or None."""
    events, cursor = coupons.history(coupon["code"], limit=HISTORY_IN_VIEW)
    return {**coupon, "history": events[::-1], "history_next_cursor": cursor}


def get(
    coupons: CouponStore, campaigns: CampaignStore, typed_code: str, principal: Principal
) -> dict[str, Any]:
    coupon = _found(coupons, typed_code, principal)
    if principal.role is Role.MERCHANT:  # a till's view shows no history: none is read
        return rules.view(coupon, campaigns.get(coupon["campaign_id"]), principal, datetime.now(UTC))
    return rules.view(_with_history(coupons, coupon), {}, principal, datetime.now(UTC))


def history(
    coupons: CouponStore, typed_code: str, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A coupon's events, newest first, page by page: admin; the issuer of its brand."""
    principal.require(Role.ADMIN, Role.ISSUER)
    coupon = _found(coupons, typed_code, principal)
    return coupons.history(coupon["code"], limit=limit, cursor=cursor)


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
    if not coupons.void(coupon["code"], event):
        # Used or voided between our read and the write: the write's condition decided.
        raise rules.CouponNotVoidable(f"the coupon is {coupons.get(coupon['code'])['state']}")
    return rules.view(_with_history(coupons, {**coupon, "state": "VOID"}), {}, principal, now)


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


class DynamicCodeAlreadyProvisioned(Conflict):
    code = "dynamic_code_already_provisioned"
    title = "The dynamic-code secret of this coupon was handed out already (once only)"


def _usable_for_holder(
    coupons: CouponStore, campaigns: CampaignStore, typed_code: str, principal: Principal, method: str
):
    """The coupon and its campaign, if the holder's app (through an admin or the issuer's backend) may
    get a way to prove it at the till with `method`."""
    principal.require(Role.ADMIN, Role.ISSUER)
    coupon = _found(coupons, typed_code, principal)
    campaign = campaigns.get(coupon["campaign_id"])
    if method not in campaign.get("verification_methods", []):
        raise MethodNotAllowed(f"{method} is not accepted by this campaign", field="code")
    state = rules.state_at(coupon, datetime.now(UTC))
    if state not in (rules.CouponState.ISSUED, rules.CouponState.PARTIALLY_USED):
        raise CouponNotUsable(f"the coupon is {state.value}", field="code")
    return coupon, campaign


class CouponNotUsable(Conflict):
    code = "coupon_not_usable"
    title = "The coupon cannot be used (redeemed, void or expired)"


def qr_token(
    coupons: CouponStore,
    campaigns: CampaignStore,
    typed_code: str,
    principal: Principal,
    *,
    key: bytes,
    now: int,
) -> dict[str, Any]:
    """A signed token binding the code, its holder and an expiry (60 s), for the holder's app to show."""
    coupon, _ = _usable_for_holder(coupons, campaigns, typed_code, principal, "QR_TOKEN")
    expires_at = now + verification.QR_TOKEN_SECONDS
    token = verification.sign_qr_token(
        key,
        code=coupon["code"],
        user_id=coupon["user_id"],
        expires_at=expires_at,
        nonce=verification.new_nonce(),
    )
    return {"qr_token": token, "expires_at": expires_at, "code": coupon["code"]}


def provision_dynamic_code(
    coupons: CouponStore,
    campaigns: CampaignStore,
    typed_code: str,
    principal: Principal,
    *,
    key: bytes,
    issuer: str,
    completion: Completion | None = None,
) -> dict[str, Any]:
    """The otpauth:// URI of the coupon's dynamic-code secret, handed out once (recorded on the coupon
    under a condition, so two concurrent calls cannot both get it). With an Idempotency-Key the mark
    and the completion are one transaction; the record keeps the answer without its URI
    (`without_secret`), and a replay rebuilds it (`with_secret`): the secret is derived, never stored."""
    coupon, _ = _usable_for_holder(coupons, campaigns, typed_code, principal, "DYNAMIC_CODE")
    answer = with_secret({"code": coupon["code"]}, key=key, issuer=issuer)
    if not coupons.mark_dynamic_code_provisioned(
        coupon["code"], iso(datetime.now(UTC)), completion=put_of(completion, answer)
    ):
        raise DynamicCodeAlreadyProvisioned(field="code")
    return answer


def without_secret(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "otpauth_uri"}


def with_secret(answer: dict[str, Any], *, key: bytes, issuer: str) -> dict[str, Any]:
    secret = verification.coupon_totp_secret(key, answer["code"])
    return {"otpauth_uri": verification.otpauth_uri(secret, account=answer["code"], issuer=issuer), **answer}
