"""Which records of the table's stream are new redemptions and reversals: what clearing posts and the
anomaly detector observes. One rule for both the Lambda event filters (infra) and the handlers' own
check, so the two cannot drift.

A new source is an INSERT of its item, or a redemption hold captured in place: a MODIFY whose OldImage
kind is HOLD and NewImage kind REDEMPTION (docs/redemption.md "Toward one request"). Any other change
of a redemption (its refund totals, clearing's own marks) or of a hold (voided, released) is not.
"""

from __future__ import annotations

from typing import Any

CLEARED = ("REDEMPTION", "REVERSAL")  # what clearing posts
OBSERVED = ("REDEMPTION",)  # what the anomaly detector counts
_HOLD, _CAPTURED_AS = "HOLD", "REDEMPTION"


def _kind(image: dict[str, Any] | None) -> str | None:
    return ((image or {}).get("kind") or {}).get("S")


def new_source(raw: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """The NewImage of a stream record (its raw event) that makes a new source of `kinds`, else None."""
    images = raw.get("dynamodb") or {}
    new = images.get("NewImage")
    if not new:
        return None
    if raw.get("eventName") == "INSERT" and _kind(new) in kinds:
        return new
    if (
        raw.get("eventName") == "MODIFY"
        and _CAPTURED_AS in kinds
        and _kind(images.get("OldImage")) == _HOLD
        and _kind(new) == _CAPTURED_AS
    ):
        return new
    return None


def filter_patterns(kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """The Lambda event filter patterns (any one matching lets a record through) saying `new_source`."""
    patterns: list[dict[str, Any]] = [
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": list(kinds)}}}}
    ]
    if _CAPTURED_AS in kinds:
        patterns.append(
            {
                "eventName": ["MODIFY"],
                "dynamodb": {
                    "OldImage": {"kind": {"S": [_HOLD]}},
                    "NewImage": {"kind": {"S": [_CAPTURED_AS]}},
                },
            }
        )
    return patterns
