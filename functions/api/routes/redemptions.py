"""/v1/redemptions: quote, redeem, read, reverse — the checkout path."""

from __future__ import annotations

from typing import Annotated

from answers import (
    CapturedHold,
    Quote,
    Redemption,
    RedemptionDetail,
    ReleasedHold,
    Reversal,
    ReversalPage,
    documented,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator, model_validator

import dependencies
from coupons.domain.campaigns import Amount, PartyId
from coupons.domain.errors import InvalidField
from coupons.domain.idempotency import HEADER as IDEMPOTENCY_HEADER
from coupons.domain.ledger import journal_id
from coupons.domain.money import Currency
from coupons.domain.principals import Role
from coupons.domain.risk.fields import ClientIp, DeviceId, normalized_ip
from coupons.services.redemption import Order, Proof
from resolver import answered, app, caller, created, idempotency_scope, json_response, roles, subjects


class OrderFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="the plain code (barcode); with dynamic_code for a dynamic-code check"
    )
    qr_token: Annotated[StrictStr, Field(min_length=1, max_length=1024)] | None = None
    dynamic_code: Annotated[StrictStr, Field(pattern=r"^[0-9]{6}$")] | None = None
    merchant_id: PartyId
    store_id: PartyId
    order_amount: Amount
    currency: Currency
    amount: Amount | None = Field(
        default=None, description="gift cards: the amount to take (at most the order)"
    )
    device_id: DeviceId | None = Field(default=None, description="the end user's device (risk rules)")
    client_ip: ClientIp | None = Field(default=None, description="the end user's IP address (risk rules)")

    _client_ip = field_validator("client_ip")(normalized_ip)

    @model_validator(mode="after")
    def _one_proof(self):
        if (self.code is None) == (self.qr_token is None):
            raise InvalidField("give exactly one of code or qr_token", field="code")
        if self.dynamic_code is not None and self.code is None:
            raise InvalidField("dynamic_code goes with code", field="dynamic_code")
        if self.amount is not None and self.amount > self.order_amount:
            raise InvalidField("amount cannot be more than order_amount", field="amount")
        return self

    def proof(self) -> Proof:
        return Proof(code=self.code, qr_token=self.qr_token, dynamic_code=self.dynamic_code)


class QuoteRequest(OrderFields):
    order_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None


class RedeemRequest(OrderFields):
    order_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    capture: StrictBool = Field(
        default=True,
        description="false: place a redemption hold (authorize at checkout), captured or voided later by"
        " POST …/capture or …/void, released by itself at hold_expires_at",
    )


class CaptureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount | None = Field(
        default=None,
        description="what to capture, minor units; omitted = all of the hold. Less than the hold only for"
        " a gift card (the rest is released); more than the hold is 409 capture_exceeds_hold",
    )


class VoidRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReversalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount | None = Field(
        default=None, description="the part of the order refunded; omitted = all that remains"
    )
    restore_coupon: StrictBool = Field(
        default=True, description="after a whole refund, give the coupon back (券回退)"
    )


def _order(request: OrderFields) -> Order:
    return Order(
        merchant_id=request.merchant_id,
        store_id=request.store_id,
        order_amount=request.order_amount,
        currency=request.currency,
        order_id=getattr(request, "order_id", None),
        amount=request.amount,
    )


@app.post(
    "/v1/redemptions/quote",
    summary="The discount an order would get, or why not; writes nothing",
    tags=["redemptions"],
    operation_id="quoteRedemption",
    responses=documented((200, Quote, "the discount the order would get")),
)
def quote(request: Annotated[QuoteRequest, Body()]):
    return json_response(
        200, dependencies.redeemer().quote(request.proof(), _order(request), caller(), subjects(request))
    )


@app.post(
    "/v1/redemptions",
    summary="Redeem a coupon (merchant for itself, admin); one DynamoDB request; accepts Idempotency-Key",
    tags=["redemptions"],
    operation_id="redeemCoupon",
    responses=documented((201, Redemption, "the redemption, or with capture false the hold (status HELD)")),
)
def redeem(request: Annotated[RedeemRequest, Body()]):
    event = app.current_event
    status, body, replayed = dependencies.redeemer().redeem(
        request.proof(),
        _order(request),
        caller(),
        idempotency_scope=idempotency_scope(),
        idempotency_key=event.headers.get(IDEMPOTENCY_HEADER),
        request_body=event.json_body,
        subjects=subjects(request),
        capture=request.capture,
        seconds_left=app.lambda_context.get_remaining_time_in_millis() / 1000,
    )
    return answered(status, body, replayed)


@app.post(
    "/v1/redemptions/<redemption_id>/capture",
    summary="Capture a redemption hold: all of it, or less of a gift card's (the rest released); one"
    " DynamoDB write; accepts Idempotency-Key",
    tags=["redemptions"],
    operation_id="captureRedemptionHold",
    openapi_extensions=roles(Role.ADMIN, Role.MERCHANT),
    responses=documented((200, CapturedHold, "the redemption the hold became (clearing posts it)")),
)
def capture(redemption_id: str, request: Annotated[CaptureRequest | None, Body()] = None):
    request = request or CaptureRequest()
    event = app.current_event
    status, body, replayed = dependencies.redemption_holds().capture(
        redemption_id,
        caller(),
        amount=request.amount,
        idempotency_scope=idempotency_scope(),
        idempotency_key=event.headers.get(IDEMPOTENCY_HEADER),
        request_body=event.json_body,
    )
    return answered(status, body, replayed)


@app.post(
    "/v1/redemptions/<redemption_id>/void",
    summary="Void a redemption hold: the coupon (a gift card's amount) is released; one DynamoDB write;"
    " accepts Idempotency-Key",
    tags=["redemptions"],
    operation_id="voidRedemptionHold",
    openapi_extensions=roles(Role.ADMIN, Role.MERCHANT),
    responses=documented((200, ReleasedHold, "the hold, VOIDED")),
)
def void(redemption_id: str, request: Annotated[VoidRequest | None, Body()] = None):
    event = app.current_event
    status, body, replayed = dependencies.redemption_holds().void(
        redemption_id,
        caller(),
        idempotency_scope=idempotency_scope(),
        idempotency_key=event.headers.get(IDEMPOTENCY_HEADER),
        request_body=event.json_body,
    )
    return answered(status, body, replayed)


@app.get(
    "/v1/redemptions/<redemption_id>",
    summary="A redemption with its first 20 reversals (reversals_next_cursor: where GET …/reversals"
    " continues)",
    tags=["redemptions"],
    operation_id="getRedemption",
    responses=documented((200, RedemptionDetail, "the redemption, its first reversals and its clearing")),
)
def get_redemption(redemption_id: str):
    redemption, reversals, next_cursor = dependencies.redeemer().get(redemption_id, caller())
    body = {
        **_public(redemption),
        "reversals": [_public(r) for r in reversals],
        "reversals_next_cursor": next_cursor,
    }
    return json_response(200, {**body, "clearing": _clearing(redemption_id)})


def _clearing(redemption_id: str) -> dict:
    """PENDING until the stream's clearing has posted the journal; then its legs and rule version."""
    journal = dependencies.ledger().journal(journal_id(redemption_id))
    if journal is None:
        return {"status": "PENDING"}
    keys = (
        "journal_id",
        "legs",
        "party_shares",
        "rule",
        "business_date",
        "due_date",
        "posted_at",
        "reversed",
    )
    return {"status": "CLEARED", **{k: journal[k] for k in keys if k in journal}}


@app.get(
    "/v1/redemptions/<redemption_id>/reversals",
    summary="A redemption's reversals, oldest first, page by page",
    tags=["redemptions"],
    operation_id="listReversals",
    responses=documented((200, ReversalPage, "the reversals, oldest first")),
)
def list_reversals(
    redemption_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
):
    _, reversals, next_cursor = dependencies.redeemer().get(
        redemption_id, caller(), limit=limit, cursor=cursor
    )
    return json_response(200, {"items": [_public(r) for r in reversals], "next_cursor": next_cursor})


@app.post(
    "/v1/redemptions/<redemption_id>/reversals",
    summary="Refund all or part of the order: the discount comes back in proportion; accepts Idempotency-Key",
    tags=["redemptions"],
    operation_id="reverseRedemption",
    responses=documented((201, Reversal, "the reversal")),
)
def reverse(redemption_id: str, request: Annotated[ReversalRequest | None, Body()] = None):
    request = request or ReversalRequest()
    principal = caller()
    return created(
        lambda completion: dependencies.redeemer().reverse(
            redemption_id,
            principal,
            amount=request.amount,
            restore_coupon=request.restore_coupon,
            completion=completion,
        ),
        shape=_public,
    )


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("kind", "holder")}
