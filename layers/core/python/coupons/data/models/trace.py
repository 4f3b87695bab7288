"""Read-only views the trace needs of items other stores own: a ledger posting's settlement fields
(coupons/data/ledger.py writes postings, settlement claims and settles them). Never written through."""

from __future__ import annotations

from coupons.data.models.base import Flag, Integer, MainModel, Text


class PostingView(MainModel):
    account = Text(null=True)
    amount = Integer(null=True)
    currency = Text(null=True)
    journal_id = Text(null=True)
    run_id = Text(null=True)  # set when a settlement run claims the posting
    settled = Flag(null=True)
    settled_at = Text(null=True)
