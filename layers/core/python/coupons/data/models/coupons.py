"""Coupons, their history events and the per-user holding counters (coupons.data.coupons).

COUPON#{code}             / COUPON      gsi1: USER#{user_id} / {issued_at}#{code}   (the wallet)
HISTORY#{code}            / {at}#{ref}  one item per event of the coupon
HOLDING#{campaign}#{user} / HOLDING     held: how many coupons of the campaign the user was issued
"""

from __future__ import annotations

from coupons.data.models.base import Integer, MainModel, Text


def coupon_pk(code: str) -> str:
    return f"COUPON#{code}"


def history_pk(code: str) -> str:
    return f"HISTORY#{code}"


def holding_pk(campaign_id: str, user_id: str) -> str:
    return f"HOLDING#{campaign_id}#{user_id}"


def wallet_pk(user_id: str) -> str:
    return f"USER#{user_id}"


COUPON_SK, HOLDING_SK = "COUPON", "HOLDING"


def history_sk(event: dict) -> str:
    """An event's sort key: its time, then its ref (the redemption / reversal id, or the event's name)."""
    ref = event.get("reversal_id") or event.get("redemption_id") or event["event"]
    return f"{event['at']}#{ref}"


class Coupon(MainModel):
    """A coupon (coupons.domain.coupons.new_coupon) and what its uses set on it."""

    code = Text()
    campaign_id = Text()
    brand_id = Text()
    user_id = Text()
    type = Text()
    currency = Text()
    face_value = Integer()
    state = Text()
    valid_from = Text()
    valid_until = Text()
    issued_at = Text()
    issued_by = Text()
    shard = Integer()
    balance = Integer(null=True)  # gift cards
    # Gift cards with redemption holds: balance - the amounts held (absent: no hold ever, = balance).
    available = Integer(null=True)
    redemption_id = Text(null=True)  # a single-use coupon: the redemption that used (or holds) it
    totp_step = Integer(null=True)  # dynamic code: the newest step used
    # Dynamic-code failures (coupons.domain.risk.guessing): counted since totp_failed_since; locked
    # until totp_locked_until (epoch seconds) after too many.
    totp_failures = Integer(null=True)
    totp_failed_since = Integer(null=True)
    totp_locked_until = Integer(null=True)
    dynamic_code_provisioned_at = Text(null=True)


class HistoryEvent(MainModel):
    """One event of a coupon's history: issued, redeemed, reversed, voided."""

    at = Text()
    event = Text()
    by = Text(null=True)
    reason = Text(null=True)
    redemption_id = Text(null=True)
    reversal_id = Text(null=True)
    merchant_id = Text(null=True)
    amount = Integer(null=True)


class Holding(MainModel):
    """How many coupons of a campaign a user was issued (the per-user limit's counter)."""

    campaign_id = Text()
    user_id = Text()
    held = Integer()
