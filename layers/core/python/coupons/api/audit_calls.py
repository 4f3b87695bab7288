"""Every API call's audit record, sent by the API function to the audit queue once its answer is known
(the audit function appends it to the log: coupons.services.audit.api_call).

A queue, not the table: the redemption path gains one SQS SendMessage (no DynamoDB request, no write
unit, no contention with the log's heads). A send that fails is logged and counted, never turned into a
failed answer: the call's effects are audited from the table's stream anyway; what would be lost is
the record of the call itself (a metric and its alarm say so).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from coupons.domain.audit import redact
from coupons.domain.times import iso

QUEUE_VARIABLE = "AUDIT_QUEUE_URL"


def record(event: dict, answer: dict, *, principal: Any, key_id: str | None) -> dict[str, Any]:
    """What the log keeps of one call (never its body, nor its key: the key id only)."""
    context = event.get("requestContext") or {}
    epoch_ms = context.get("requestTimeEpoch")
    at = (
        datetime.fromtimestamp(epoch_ms / 1000, UTC)
        if isinstance(epoch_ms, int | float)
        else datetime.now(UTC)
    )
    return redact(
        {
            "request_id": context.get("requestId") or "",
            "time": iso(at),
            "principal": str(principal) if principal is not None else None,
            "key_id": key_id,
            "method": event.get("httpMethod"),
            "route": context.get("resourcePath") or event.get("resource"),
            "path": event.get("path"),
            "status": answer.get("statusCode"),
            "source_ip": (context.get("identity") or {}).get("sourceIp"),
        }
    )


def send(client_factory, message: dict[str, Any]) -> bool:
    """Sends the record if the function has a queue; whether it was sent."""
    url = os.environ.get(QUEUE_VARIABLE)
    if not url or not message.get("request_id"):
        return False
    client_factory().send_message(QueueUrl=url, MessageBody=json.dumps(message, separators=(",", ":")))
    return True
