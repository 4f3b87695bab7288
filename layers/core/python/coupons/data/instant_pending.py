"""The threshold flush's items (coupons.data.models.instant: PendingTotal, PendingMark): what clearing
adds for each merchant's redemption posting on a tenant with an instant `flush_threshold`, and what the
flush reads back (docs/instant.md, "The threshold flush").

Clearing adds two writes to the journal's own transaction (so a redelivered record, which finds its
journal posted, counts nothing twice): the window's total (ADD amount; `remaining` set from the
threshold at first, then lowered) and the posting's mark. The flush finds a party's postings of the
window with one Query of the marks, then reads them whole in one BatchGetItem per 100.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coupons.data.models.base import Write
from coupons.data.models.instant import (
    PENDING_MARK,
    PENDING_MARK_KIND,
    PENDING_TOTAL_KIND,
    PENDING_TOTAL_SK,
    PendingMark,
    PendingTotal,
    pending_mark_sk,
    pending_pk,
)
from coupons.data.models.ledger import Posting
from coupons.domain.coupons import iso

# The items live this long after their window: the stream keeps a record 24 h (the mapping's
# MaximumRecordAge), so a crossing redelivered that late still finds its marks.
KEEP_SECONDS = 2 * 24 * 3600


def window_key(window: datetime) -> str:
    return f"{window:%Y%m%d%H%M%S}"


class InstantPending:
    def __init__(self, client, table_name: str):
        self._total = PendingTotal.bound(client, table_name)
        self._mark = PendingMark.bound(client, table_name)
        self._posting = Posting.bound(client, table_name)

    def writes(
        self,
        *,
        party: str,
        currency: str,
        window: datetime,
        amount: int,
        threshold: int,
        posting_pk: str,
        posting_sk: str,
        journal_id: str,
    ) -> list[Write]:
        """The two writes clearing adds to a posting's transaction (no condition: the journal's own
        `attribute_not_exists` is what makes the transaction, so these, happen once per posting)."""
        T, K = self._total, self._mark
        pk = pending_pk(party, currency, window_key(window))
        expires = int(window.timestamp()) + KEEP_SECONDS
        total = Write(
            "update",
            T(pk, PENDING_TOTAL_SK),
            actions=(
                T.kind.set(PENDING_TOTAL_KIND),
                T.party.set(party),
                T.currency.set(currency),
                T.window.set(iso(window)),
                T.expires_at.set(expires),
                # ADD: concurrent postings of the party add, never overwrite.
                T.amount.add(amount),
                # What is left to the threshold: the threshold at the window's first posting, then less.
                T.remaining.set((T.remaining | threshold) - amount),
            ),
        )
        mark = Write(
            "put",
            K(pk, pending_mark_sk(journal_id), kind=PENDING_MARK_KIND, posting_pk=posting_pk,
              posting_sk=posting_sk, expires_at=expires),
        )  # fmt: skip
        return [total, mark]

    def marked(self, party: str, currency: str, window: datetime) -> list[tuple[str, str]]:
        """The keys of the postings counted into the party's window (one Query, strongly consistent)."""
        pk = pending_pk(party, currency, window_key(window))
        marks = self._mark.query(pk, self._mark.sk.startswith(PENDING_MARK), consistent_read=True)
        return [(m.posting_pk, m.posting_sk) for m in marks]

    def postings(self, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """The postings whole (keys included, as a stream image gives them), strongly consistent: what
        the payout claims, and whether someone claimed or settled them already."""
        found = self._posting.batch_get(sorted(set(keys)), consistent_read=True)
        return [{**p.record(), "pk": p.pk, "sk": p.sk} for p in found]

    def total(self, party: str, currency: str, window: datetime) -> dict[str, Any] | None:
        try:
            return self._total.get(
                pending_pk(party, currency, window_key(window)), PENDING_TOTAL_SK, consistent_read=True
            ).record(keep_keys=True)
        except self._total.DoesNotExist:
            return None


__all__ = ["InstantPending", "KEEP_SECONDS", "window_key"]
