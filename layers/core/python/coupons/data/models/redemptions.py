"""Redemptions, their reversals and used QR tokens (coupons.data.redemptions).

REDEMPTION#{id} / REDEMPTION            the redemption (kind REDEMPTION)
REDEMPTION#{id} / REVERSAL#{at}#{id}    its reversals (kind REVERSAL)
    both, until clearing has posted their journal: gsi2 CLEARING_PENDING#{shard} / {business_date}#{id}
QRTOKEN#{nonce} / QRTOKEN               a used QR token (expires_at: the table's TTL)

One Query of a REDEMPTION# partition returns both kinds: `RedemptionPartition` decodes each item with
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
    """A redemption (coupons.services.redemption: _records) and its running refund totals."""

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
        return (Reversal if kind == "REVERSAL" else Redemption).from_raw_data(data)


class QrToken(MainModel):
    """A used QR token's nonce: a token works once; gone (TTL) once the token itself has expired."""
