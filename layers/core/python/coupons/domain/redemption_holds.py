"""Redemption holds (authorizations, 预占): a redemption placed with "capture": false, captured when the
order is paid, voided, or released by its expiry. Pure: the rules a hold's capture and release follow.

States: HELD → CAPTURED (all of it; a gift card's hold also less, the rest released) | VOIDED | EXPIRED.
A single-use coupon is HELD while its hold is (it cannot be redeemed or held again); a gift card keeps its
state and its `available` (balance − live holds) goes down by the amount held.
(Not the risk "hold" of a party's settlement: domain/risk/holds.py.)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from coupons.domain.errors import Conflict

# A hold lasts at most this long (a card network's authorization does not last longer either).
MAX_HOLD_SECONDS = 7 * 24 * 3600
# The tenant's default when its file says nothing.
DEFAULT_HOLD_SECONDS = 30 * 60

HELD, CAPTURED, VOIDED, EXPIRED = "HELD", "CAPTURED", "VOIDED", "EXPIRED"


class HoldExpired(Conflict):
    code = "hold_expired"
    title = "The hold has expired: it is released (or being released), it can no longer be captured"


class HoldNotActive(Conflict):
    code = "hold_not_active"
    title = "The hold was captured, voided or released already"


class NotAHold(Conflict):
    code = "not_a_hold"
    title = "This redemption was captured when it was made: it has no hold to capture or void"


class CaptureExceedsHold(Conflict):
    code = "capture_exceeds_hold"
    title = "The amount is more than the hold"


class PartialCaptureNotAllowed(Conflict):
    code = "partial_capture_not_allowed"
    title = "Only a gift card's hold can be captured in part; capture all of it or void it"


def hold_seconds(campaign_seconds: int | None, tenant_seconds: int) -> int:
    """How long a new hold lasts: the campaign's own default, else the tenant's (both at most 7 days,
    checked where they are set)."""
    seconds = tenant_seconds if campaign_seconds is None else campaign_seconds
    return min(seconds, MAX_HOLD_SECONDS)


def expires_at(moment: datetime, seconds: int) -> datetime:
    return moment + timedelta(seconds=seconds)


def capture_amount(held: int, asked: int | None, *, gift_card: bool) -> int:
    """What a capture takes: all of the hold (asked None), or for a gift card `asked` if not above it."""
    if asked is None:
        return held
    if asked > held:
        raise CaptureExceedsHold(f"the hold is {held}", field="amount")
    if asked != held and not gift_card:
        raise PartialCaptureNotAllowed(field="amount")
    return asked


def refusal(hold: dict, *, now_iso: str) -> Conflict:
    """Why a hold cannot be captured or voided now, read from the hold as it is."""
    if hold.get("hold_status") == EXPIRED or (
        hold.get("hold_status") == HELD and hold.get("hold_expires_at", "") <= now_iso
    ):
        return HoldExpired(field="redemption_id")
    return HoldNotActive(f"the hold is {hold.get('hold_status')}", field="redemption_id")
