"""Traces: a coupon's or a redemption's whole chain in one answer (coupons.services.trace)."""

from __future__ import annotations

from answers import Trace, documented

import dependencies
from coupons.domain.principals import Role
from resolver import app, caller, json_response, roles


@app.get(
    "/v1/coupons/<code>/trace",
    summary="The coupon's whole chain: issued, each redemption (verified, redeemed, reversed, cleared, "
    "settled), voided; each step with its time, actor and audit entry ids (admin, its issuer)",
    tags=["coupons"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="traceCoupon",
    responses=documented((200, Trace, "the steps, oldest first")),
)
def trace_coupon(code: str):
    return json_response(200, dependencies.tracer().coupon(code, caller()))


@app.get(
    "/v1/redemptions/<redemption_id>/trace",
    summary="The redemption's whole chain, from the coupon's issue to the transfer that paid it (admin, "
    "the redeeming merchant, the brand; a merchant's trace starts at the verification)",
    tags=["redemptions"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER, Role.MERCHANT),
    operation_id="traceRedemption",
    responses=documented((200, Trace, "the steps, in the order they happened")),
)
def trace_redemption(redemption_id: str):
    return json_response(200, dependencies.tracer().redemption(redemption_id, caller()))
