"""The instant payout service a function needs (functions/instant), built from its environment once per
container, on first use (never at import: a client made before moto starts would talk to real AWS)."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from coupons.config import settings
from coupons.data.clients import dynamodb, events
from coupons.data.instant import InstantStore
from coupons.data.instant_pending import InstantPending
from coupons.data.models.base import plain_image
from coupons.data.models.instant import PENDING, PENDING_TOTAL_SK
from coupons.data.redemptions import RedemptionStore
from coupons.data.settlement import SettlementStore
from coupons.observability import metrics
from coupons.services.instant import (
    EVENT_SOURCE,
    INSTANT_SETTLEMENT,
    SEND_LEASE_S,
    InstantPayouts,
    parse_terms,
)
from coupons.services.settlement import SettlementSteps, parse_fees
from coupons.settlement_wiring import CHANNEL_FEES


def posting_of(record: dict[str, Any]) -> dict[str, Any] | None:
    """A merchant's posting (plain values, keys included) from a stream record, or None if the record
    is anything else (the mapping's filter lets only these through on AWS; a local stream may not)."""
    keys = (record.get("dynamodb") or {}).get("Keys") or {}
    image = (record.get("dynamodb") or {}).get("NewImage")
    if record.get("eventName") != "INSERT" or not image:
        return None
    if not keys.get("pk", {}).get("S", "").startswith("ENTRIES#merchant:"):
        return None
    return plain_image(image)


def crossing_of(record: dict[str, Any]) -> dict[str, Any] | None:
    """A party's pending total that reached its flush threshold (plain values), from a stream record, or
    None (the threshold mapping's filter lets only these through on AWS; a local stream may not)."""
    keys = (record.get("dynamodb") or {}).get("Keys") or {}
    image = (record.get("dynamodb") or {}).get("NewImage")
    if record.get("eventName") not in ("INSERT", "MODIFY") or not image:
        return None
    if (
        not keys.get("pk", {}).get("S", "").startswith(PENDING)
        or keys.get("sk", {}).get("S") != PENDING_TOTAL_SK
    ):
        return None
    total = plain_image(image)
    old = plain_image((record.get("dynamodb") or {}).get("OldImage") or {})
    if total.get("remaining", 1) > 0 or old.get("remaining", 1) <= 0:
        return None  # not the crossing itself: below the threshold still, or past it already
    return total


@cache
def _channel():
    from coupons.channels import channel_from_environment

    return channel_from_environment()


def _emit(kind: str, detail: dict[str, Any]) -> None:
    # After the payout is recorded: an event lost here loses no money (the statement and the run hold
    # it); it is logged by powertools' error handling if put_events raises.
    events().put_events(
        Entries=[{"Source": EVENT_SOURCE, "DetailType": kind, "Detail": json.dumps(detail, sort_keys=True)}]
    )


def _metric(name: str, value: int) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@cache
def payouts() -> InstantPayouts:
    table = settings().main_table
    terms = parse_terms(os.environ.get(INSTANT_SETTLEMENT))
    store = SettlementStore(dynamodb(), table)
    steps = SettlementSteps(
        store,
        RedemptionStore(dynamodb(), table),
        None,  # an instant payout writes no S3 statement: its statement is the day's instant one
        _channel,
        time_zone=settings().time_zone,
        minimums=terms.minimums,  # the instant minimum (none unless set), not the runs'
        channel_name=os.environ.get("PAYMENT_CHANNEL", "simulated"),
        fees=parse_fees(os.environ.get(CHANNEL_FEES)),
        send_lease_s=SEND_LEASE_S,  # what lets a give-up see a send under way
    )
    return InstantPayouts(
        InstantStore(dynamodb(), table),
        store,
        steps,
        _channel,
        terms,
        time_zone=settings().time_zone,
        emit=_emit,
        metric=_metric,
        pending=InstantPending(dynamodb(), table),
    )


def reset() -> None:
    for built in (_channel, payouts):
        built.cache_clear()
