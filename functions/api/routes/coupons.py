"""/v1/coupons/{code} and /v1/users/{user_id}/coupons: a coupon, voiding one, a user's wallet."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

import dependencies
from coupons.services import coupons
from resolver import app, caller, json_response


@app.get(
    "/v1/coupons/<code>",
    summary="A coupon: state, owner, validity, balance, its latest 20 events (history, oldest first) and"
    " history_next_cursor for older ones (a merchant sees only what it needs)",
    tags=["coupons"],
)
def get_coupon(code: str):
    return json_response(200, coupons.get(dependencies.coupons(), dependencies.campaigns(), code, caller()))


@app.get(
    "/v1/coupons/<code>/history",
    summary="A coupon's events, newest first (admin, owning issuer); cursor: a next_cursor or the"
    " coupon's history_next_cursor",
    tags=["coupons"],
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


@app.post("/v1/coupons/<code>/void", summary="Void an unused coupon (admin, owning issuer)", tags=["coupons"])
def void_coupon(code: str, request: Annotated[VoidRequest | None, Body()] = None):
    reason = request.reason if request else None
    return json_response(200, coupons.void(dependencies.coupons(), code, caller(), reason))


@app.get(
    "/v1/users/<user_id>/coupons",
    summary="A user's wallet, newest first (admin; issuer: its brand's)",
    tags=["coupons"],
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
)
def coupon_qr_token(code: str):
    answer = coupons.qr_token(
        dependencies.coupons(),
        dependencies.campaigns(),
        code,
        caller(),
        key=dependencies.tenant_key(),
        now=int(time.time()),
    )
    return json_response(201, answer)


@app.post(
    "/v1/coupons/<code>/dynamic-code",
    summary="The coupon's dynamic-code (TOTP) secret as an otpauth:// URI, handed out once",
    tags=["coupons"],
)
def coupon_dynamic_code(code: str):
    answer = coupons.provision_dynamic_code(
        dependencies.coupons(),
        dependencies.campaigns(),
        code,
        caller(),
        key=dependencies.tenant_key(),
        issuer=f"Coupons {dependencies.settings().tenant}",
    )
    return json_response(201, answer)
