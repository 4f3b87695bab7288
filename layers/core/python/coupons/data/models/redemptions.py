"""Redemptions, their reversals and used QR tokens (coupons.data.redemptions).

REDEMPTION#{id} / REDEMPTION            the redemption (kind REDEMPTION), or a redemption hold (kind HOLD)
REDEMPTION#{id} / REVERSAL#{at}#{id}    its reversals (kind REVERSAL)
    A hold (authorization, placed by a redemption with "capture": false) is the redemption-to-be in
    place: its capture turns the item into the REDEMPTION clearing takes (a MODIFY, kind HOLD →
    REDEMPTION: coupons.data.redemption_stream), its void or expiry leaves it kind HOLD. While HELD:
    gsi1 LIVE_HOLDS#{shard} / {hold_expires_at}#{id} (the expiry sweep's Query per shard, never a Scan),
    and the order index's key kept aside as `held_order_gsi1pk` until the capture moves it into gsi1.
    Redemptions and reversals, until clearing has posted their journal:
    gsi2 CLEARING_PENDING#{shard} / {business_date}#{id}
QRTOKEN#{nonce} / QRTOKEN               a used QR token (expires_at: the table's TTL)

One Query of a REDEMPTION# partition returns the kinds: `RedemptionPartition` decodes each item with
the model its `kind` names (an attribute every such item carries already; no discriminator is added).
"""

from __future__ import annotations

import hashlib
from typing import Any

from coupons.data.models.base import Flag, Integer, MainModel, Text


def redemption_pk(redemption_id: str) -> str:
    return f"REDEMPTION#{redemption_id}"


def qr_token_pk(nonce: str) -> str:
    return f"QRTOKEN#{nonce}"


REDEMPTION_SK, QR_TOKEN_SK = "REDEMPTION", "QRTOKEN"
REVERSAL_SK_PREFIX = "REVERSAL#"


def reversal_sk(reversed_at: str, reversal_id: str) -> str:
    return f"{REVERSAL_SK_PREFIX}{reversed_at}#{reversal_id}"


PENDING_SHARDS = 16
CLEARING_PENDING = "CLEARING_PENDING#"


def pending_shard(source_id: str) -> int:
    """The clearing-pending shard of a redemption or reversal id: sha256, first 4 bytes, mod 16."""
    return int.from_bytes(hashlib.sha256(source_id.encode()).digest()[:4], "big") % PENDING_SHARDS


def pending_partition(shard: int) -> str:
    return f"{CLEARING_PENDING}{shard}"


def pending_index(source_id: str, business_date: str) -> dict[str, str]:
    """The gsi2 keys a redemption / reversal item carries until clearing has posted its journal."""
    return {
        "gsi2pk": pending_partition(pending_shard(source_id)),
        "gsi2sk": f"{business_date}#{source_id}",
    }


LIVE_HOLD_SHARDS = 8
LIVE_HOLDS = "LIVE_HOLDS#"


def live_hold_partition(shard: int) -> str:
    return f"{LIVE_HOLDS}{shard}"


def live_hold_index(redemption_id: str, hold_expires_at: str) -> dict[str, str]:
    """The gsi1 keys a redemption hold carries while it is HELD: its expiry first, so the holds due by a
    moment are a key-range Query of each shard (sharded by the same hash as the pending index)."""
    return {
        "gsi1pk": live_hold_partition(pending_shard(redemption_id) % LIVE_HOLD_SHARDS),
        "gsi1sk": f"{hold_expires_at}#{redemption_id}",
    }


class _Source(MainModel):
    """What a redemption and a reversal share: everything clearing needs travels on the item."""

    kind = Text()
    redemption_id = Text()
    code = Text(null=True)
    campaign_id = Text(null=True)
    brand_id = Text(null=True)
    funding_rule_id = Text(null=True)
    merchant_id = Text(null=True)
    store_id = Text(null=True)
    order_id = Text(null=True)
    currency = Text(null=True)
    coupon_type = Text(null=True)
    settlement_cycle = Text(null=True)
    business_date = Text(null=True)
    discount_reversed = Integer(null=True)


class Redemption(_Source):
    """A redemption (coupons.services.redemption: _records) and its running refund totals; or, kind HOLD,
    a redemption hold: the redemption as it would be, `discount` = the amount held, not cleared.
    HELD → CAPTURED (the item becomes kind REDEMPTION) | VOIDED | EXPIRED (it stays kind HOLD)."""

    # Never handed back in a record: an index key kept aside while the item is a hold.
    KEYS = (*_Source.KEYS, "held_order_gsi1pk")

    order_amount = Integer(null=True)
    discount = Integer(null=True)
    coupon_state_after = Text(null=True)
    verification_method = Text(null=True)
    redeemed_at = Text(null=True)
    balance_after = Integer(null=True)
    redeemed_by = Text(null=True)
    holder = Text(null=True)
    refunded_amount = Integer(null=True)
    # The risk rule that decided, when one did (coupons.domain.risk.holds.review_fields); a REVIEW
    # redemption's `review_hold` keeps its postings out of settlement until released.
    risk_action = Text(null=True)
    risk_rule_id = Text(null=True)
    risk_rule_version = Integer(null=True)
    risk_reason = Text(null=True)
    review_hold = Text(null=True)
    # A redemption hold, and a redemption that was one (services/redemption_holds.py): what was held,
    # when, until when, how it ended and when.
    held_amount = Integer(null=True)
    held_at = Text(null=True)
    hold_expires_at = Text(null=True)
    hold_status = Text(null=True)
    # When it was voided or released by expiry (a capture's is its redeemed_at, and what it captured its
    # discount: not stored twice, data/redemption_holds.py).
    closed_at = Text(null=True)
    # While HELD: the order index's gsi1pk (gsi1 is the live holds' index then); a capture moves it in.
    held_order_gsi1pk = Text(null=True)


class Reversal(_Source):
    """A reversal (a refund of part or all of the order) of its redemption."""

    reversal_id = Text()
    refund_amount = Integer(null=True)
    reversed_at = Text(null=True)
    reversed_by = Text(null=True)
    coupon_restored = Flag(null=True)


class RedemptionPartition(MainModel):
    """A REDEMPTION# partition (or the clearing-pending index) read as it is: each item decoded as the
    Redemption or Reversal its `kind` says (a bare key, as in a paging cursor, decodes as a Redemption)."""

    kind = Text(null=True)

    @classmethod
    def from_raw_data(cls, data: dict[str, Any]) -> MainModel:  # type: ignore[override]
        # The item's kind read through the model (the partition's own `kind`), then the item decoded whole
        # by the model it names. (A PynamoDB discriminator would do this, but it does not carry over to the
        # per-client subclasses `bound` makes.)
        kind = super().from_raw_data(data).kind
        model = Reversal if kind == "REVERSAL" else Redemption  # a hold is a Redemption of kind HOLD
        return model.from_raw_data(data)


class QrToken(MainModel):
    """A used QR token's nonce: a token works once; gone (TTL) once the token itself has expired."""
