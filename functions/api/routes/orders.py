"""/v1/orders/events: merchants' order systems report what became of an order (PAID, CANCELLED,
REFUNDED), one event or a batch; the redemptions made against the order follow (services/orders.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from answers import OrderEventsRecorded, documented
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr

import dependencies
from coupons.domain.campaigns import Amount, PartyId
from coupons.domain.errors import InvalidField
from coupons.domain.money import Currency
from coupons.domain.orders import OrderEvent
from coupons.domain.principals import Role
from coupons.domain.times import iso
from resolver import app, caller, json_response, roles

MAX_BATCH = 100


class OrderEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merchant_id: PartyId | None = Field(
        default=None, description="the order's merchant (a merchant key: its own, the default)"
    )
    order_id: Annotated[
        StrictStr,
        Field(min_length=1, max_length=128, description="the order_id the redemption was made with"),
    ]
    type: Literal["PAID", "CANCELLED", "REFUNDED"]
    amount: Amount | None = Field(
        default=None, description="PAID: what the order was paid; REFUNDED: what was refunded"
    )
    currency: Currency | None = None
    occurred_at: AwareDatetime = Field(
        description="when it happened at the merchant (ISO 8601 with an offset)"
    )
    event_id: (
        Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")] | None
    ) = Field(
        default=None,
        description="the merchant's id of the event; without one it is derived from what the event says",
    )


class OrderEventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[OrderEventIn], Field(min_length=1, max_length=MAX_BATCH)]


@app.post(
    "/v1/orders/events",
    summary="Report order outcomes (one event, or {events: [...]}, at most 100): a cancellation reverses its "
    "redemption, a refund without its reversal gets the proportional one; a redelivered event changes nothing "
    "(merchant for its own orders, admin)",
    tags=["orders"],
    openapi_extensions=roles(Role.ADMIN, Role.MERCHANT),
    operation_id="reportOrderEvents",
    responses=documented((200, OrderEventsRecorded, "what each event did")),
)
def report(request: Annotated[OrderEventBatch | OrderEventIn, Body()]):
    principal = caller(Role.ADMIN, Role.MERCHANT)
    given = request.events if isinstance(request, OrderEventBatch) else [request]
    events = [
        OrderEvent(merchant_id=e.merchant_id or principal.merchant_id or "", order_id=e.order_id, type=e.type,
                   occurred_at=iso(e.occurred_at), amount=e.amount, currency=e.currency, event_id=e.event_id or "")
        for e in given
    ]  # fmt: skip
    for i, event in enumerate(events):
        if not event.merchant_id:
            where = f"events[{i}]." if isinstance(request, OrderEventBatch) else ""
            raise InvalidField("an admin names the order's merchant", field=f"{where}merchant_id")
    items = dependencies.orders().report(
        events, principal, source="api", batch=isinstance(request, OrderEventBatch)
    )
    return json_response(200, {"items": items})
