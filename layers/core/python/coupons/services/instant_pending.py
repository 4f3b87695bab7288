"""Clearing's part of the instant threshold flush (docs/instant.md, "The threshold flush"): for each
merchant's redemption posting a journal makes, on a tenant with a `flush_threshold` in its currency, the
writes that count it into its party's pending total of the window (coupons.data.instant_pending), added
to the journal's own transaction by coupons.services.clearing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coupons.data.instant_pending import InstantPending
from coupons.data.ledger import shard_of
from coupons.data.models.base import Write
from coupons.data.models.ledger import entries_pk, entry_sk
from coupons.domain import instant as rules
from coupons.domain.instant import InstantTerms
from coupons.domain.ledger import Journal


class PendingCounter:
    def __init__(self, store: InstantPending, terms: InstantTerms):
        self._store = store
        self._terms = terms

    def writes(
        self, journal: Journal, *, business_date: str, extra: dict[str, Any], at: datetime
    ) -> list[Write]:
        """The journal's postings counted toward their party's flush (none for most journals: only a
        merchant's redemption posting it is owed, in a currency with a threshold). The window is the one
        `at` (the journal's posting time) falls in, aligned as the payouts' windows are."""
        thresholds = self._terms.thresholds
        if not thresholds:
            return []
        window = rules.window_start(at, self._terms.window_seconds)
        shard = shard_of(journal.journal_id)
        writes: list[Write] = []
        for leg in journal.legs:
            posting = {
                "account": leg.account,
                "amount": leg.amount,
                "currency": journal.currency,
                "source_kind": journal.kind,
                "review_hold": extra.get("review_hold"),
            }
            if not rules.counts_toward_flush(posting, thresholds):
                continue
            writes += self._store.writes(
                party=leg.account,
                currency=journal.currency,
                window=window,
                amount=leg.amount,
                threshold=thresholds[journal.currency],
                posting_pk=entries_pk(leg.account, shard),
                posting_sk=entry_sk(business_date, journal.journal_id),
                journal_id=journal.journal_id,
            )
        return writes


__all__ = ["PendingCounter"]
