"""A merchant's daily order file (`order-files/{merchant_id}/{date}.csv`): one order outcome a line,
amounts in integer minor units (the API's units). Parsed whole before anything is applied: a bad line
refuses the file (OrderFileError naming the line and the column), nothing is written.

    order_id,type,amount,currency,occurred_at,event_id
    o-1,PAID,10000,CNY,2026-03-10T12:00:00+08:00,
    o-2,CANCELLED,,,2026-03-10T13:00:00+08:00,pos-9

`event_id` may be left empty (derived from what the line says, so the same outcome reported by the API
and by the file is one event)."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

from coupons.domain.money import is_currency
from coupons.domain.orders import OrderEvent, OrderEventType, problems
from coupons.domain.times import iso

PREFIX = "order-files/"
COLUMNS = ["order_id", "type", "amount", "currency", "occurred_at", "event_id"]
_KEY = re.compile(r"^order-files/([A-Za-z0-9_.:-]{1,64})/(\d{4}-\d{2}-\d{2})\.csv$")
_AMOUNT = re.compile(r"^[0-9]{1,13}$")


class OrderFileError(ValueError):
    def __init__(self, message: str, *, line: int, column: str | None = None):
        super().__init__(f"line {line}{f', {column}' if column else ''}: {message}")
        self.line, self.column = line, column


def parse_key(key: str) -> tuple[str, str]:
    """(merchant_id, business date) of an order file's key."""
    found = _KEY.match(key)
    if not found:
        raise OrderFileError(f"{key} is not order-files/{{merchant_id}}/{{YYYY-MM-DD}}.csv", line=0)
    return found.group(1), found.group(2)


def parse(text: str, merchant_id: str) -> list[OrderEvent]:
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(rows, None)
    if header != COLUMNS:
        raise OrderFileError(f"the header must be {','.join(COLUMNS)}", line=1)
    events = []
    for n, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(COLUMNS):
            raise OrderFileError(f"{len(row)} columns, not {len(COLUMNS)}", line=n)
        values = dict(zip(COLUMNS, (v.strip() for v in row), strict=True))
        if not values["order_id"] or len(values["order_id"]) > 128:
            raise OrderFileError("1 to 128 characters", line=n, column="order_id")
        if values["type"] not in OrderEventType.__members__:
            raise OrderFileError("PAID, CANCELLED or REFUNDED", line=n, column="type")
        amount = None
        if values["amount"]:
            if not _AMOUNT.match(values["amount"]) or int(values["amount"]) == 0:
                raise OrderFileError("a positive integer of minor units", line=n, column="amount")
            amount = int(values["amount"])
        currency = values["currency"] or None
        if currency is not None and not is_currency(currency):
            raise OrderFileError(f"{currency} is no ISO 4217 currency", line=n, column="currency")
        try:
            moment = datetime.fromisoformat(values["occurred_at"])
        except ValueError:
            raise OrderFileError("ISO 8601 with an offset", line=n, column="occurred_at") from None
        if moment.tzinfo is None:
            raise OrderFileError("ISO 8601 with an offset", line=n, column="occurred_at")
        event = OrderEvent(merchant_id=merchant_id, order_id=values["order_id"], type=values["type"],
                           occurred_at=iso(moment), amount=amount, currency=currency,
                           event_id=values["event_id"])  # fmt: skip
        for column, message in problems(event):
            raise OrderFileError(message, line=n, column=column)
        events.append(event)
    return events
