"""/v1/coupons/{code} and /v1/users/{user_id}/coupons: a coupon, voiding one, a user's wallet."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from answers import Coupon, CouponHistoryPage, CouponPage, DynamicCode, QrToken, documented
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

import dependencies
from coupons.domain.principals import Role
from coupons.services import coupons
from resolver import app, caller, created, json_response, roles


@app.get(
    "/v1/coupons/<code>",
    summary="A coupon: state, owner, validity, balance, its latest 20 events (history, oldest first) and"
    " history_next_cursor for older ones (a merchant sees only what it needs)",
    tags=["coupons"],
    operation_id="getCoupon",
    responses=documented((200, Coupon, "the coupon")),
)
def get_coupon(code: str):
    return json_response(200, coupons.get(dependencies.coupons(), dependencies.campaigns(), code, caller()))


@app.get(
    "/v1/coupons/<code>/history",
    summary="A coupon's events, newest first (admin, owning issuer); cursor: a next_cursor or the"
    " coupon's history_next_cursor",
    tags=["coupons"],
    operation_id="listCouponHistory",
    responses=documented((200, CouponHistoryPage, "the coupon's events, newest first")),
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
)
def coupon_history(
    code: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
):
    items, next_cursor = coupons.history(dependencies.coupons(), code, caller(), limit=limit, cursor=cursor)
    return json_response(200, {"items": items, "next_cursor": next_cursor})


class VoidRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[StrictStr, Field(max_length=200)] | None = None


@app.post(
    "/v1/coupons/<code>/void",
    summary="Void an unused coupon (admin, owning issuer)",
    tags=["coupons"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="voidCoupon",
    responses=documented((200, Coupon, "the coupon, VOID")),
)
def void_coupon(code: str, request: Annotated[VoidRequest | None, Body()] = None):
    reason = request.reason if request else None
    principal = caller()
    # One conditional update; its completion follows it (a replay after a lost completion is a 409).
    return created(lambda _: coupons.void(dependencies.coupons(), code, principal, reason), status=200)


@app.get(
    "/v1/users/<user_id>/coupons",
    summary="A user's wallet, newest first (admin; issuer: its brand's)",
    tags=["coupons"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="listUserCoupons",
    responses=documented((200, CouponPage, "a page of the user's coupons")),
)
def user_wallet(
    user_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    state: Annotated[
        Literal["ISSUED", "REDEEMED", "PARTIALLY_USED", "EXPIRED", "VOID"] | None, Query()
    ] = None,
):
    items, next_cursor = coupons.wallet(
        dependencies.coupons(), user_id, caller(), limit=limit, cursor=cursor, state=state
    )
    return json_response(200, {"items": items, "next_cursor": next_cursor})


@app.post(
    "/v1/coupons/<code>/qr-token",
    summary="A signed QR token (60 s) for the holder's app to show at the till (admin, owning issuer)",
    tags=["coupons"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="createQrToken",
    responses=documented((201, QrToken, "the token")),
)
def coupon_qr_token(code: str):
    principal = caller()
    # Writes nothing: the replay is the token the first call made (the record keeps it until it expires
    # with the key; the token itself expires in 60 s).
    return created(
        lambda _: coupons.qr_token(
            dependencies.coupons(),
            dependencies.campaigns(),
            code,
            principal,
            key=dependencies.tenant_key(),
            now=int(time.time()),
        )
    )


@app.post(
    "/v1/coupons/<code>/dynamic-code",
    summary="The coupon's dynamic-code (TOTP) secret as an otpauth:// URI, handed out once",
    tags=["coupons"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="provisionDynamicCode",
    responses=documented(
        (
            201,
            DynamicCode,
            "the secret as an otpauth URI (a replay under the same Idempotency-Key gives it again)",
        )
    ),
)
def coupon_dynamic_code(code: str):
    principal = caller()
    issuer = f"Coupons {dependencies.settings().tenant}"
    return created(
        lambda completion: coupons.provision_dynamic_code(
            dependencies.coupons(),
            dependencies.campaigns(),
            code,
            principal,
            key=dependencies.tenant_key(),
            issuer=issuer,
            completion=completion,
        ),
        redact=coupons.without_secret,
        restore=lambda body: coupons.with_secret(body, key=dependencies.tenant_key(), issuer=issuer),
    )
