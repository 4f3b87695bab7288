"""The ledger in the main table: journals, append-only postings, sharded balances, funding rules.

  JOURNAL#{journal_id}           / JOURNAL            the journal: legs, shares, rule; a redemption's
                                                       also counts what its reversals gave back
  ENTRIES#{account}#{shard}      / {business_date}#{journal_id}   one posting per leg (append-only)
                                 gsi1: UNSETTLED#{shard} / {due_date}#{account}#{journal_id}
                                 (until settlement claims it: sparse)
  BALANCE#{account}#{shard}      / BALANCE            running balance per currency (`bal_{CUR}`)
  FUNDINGRULE#{rule_id}          / RULE | VERSION#{n}   (coupons.data.funding_rules)

Postings and balances of an account are spread over SHARDS partition keys (the shard is a hash of
the journal id), so the platform account, which nearly every journal touches, is not one hot item:
each journal writes 2 items on one of its shards (a posting and a balance update, 2 WCU each).

Unsettled postings: every posting carries gsi1 keys `UNSETTLED#{shard}` (the shard of its ENTRIES
partition) / `{due_date}#{account}#{journal_id}`, so settlement finds what is due by a date with one
Query per shard. Settlement claims a posting by updating it (SET run_id ..., REMOVE gsi1pk, gsi1sk):
the index is sparse, it holds only what nobody has claimed yet.

The items are PynamoDB models (coupons.data.models.ledger, .funding); every method answers plain dicts.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactGet

from coupons.data.funding_rules import FundingRuleStore
from coupons.data.models.base import Transaction, Write, connection
from coupons.data.models.ledger import (
    BALANCE_SK,
    JOURNAL_SK,
    UNSETTLED,
    Balance,
    ClearedSource,
    Journal,
    Posting,
    balance_attribute,
    balance_pk,
    entries_pk,
    entry_sk,
    journal_pk,
    unsettled_partition,
    unsettled_sort_key,
)
from coupons.domain.ledger import Journal as JournalTerms
from coupons.domain.ledger import settled_by_runs

SHARDS = 32
# Posting attributes copied from the record clearing was given (`extra`), for statements.
POSTING_EXTRA = (
    "event_at",
    "redemption_id",
    "reversal_id",
    "campaign_id",
    "brand_id",
    "merchant_id",
    "store_id",
    "order_id",
    "code",
    "review_hold",  # a REVIEW redemption's (and its reversals'): settlement holds it until released
)
_JOURNAL, _SOURCE, _REVERSAL = "journal", "source", "reversal"
JOURNAL_TAG = _JOURNAL  # the tag of the journal's own put in a transaction add_journal filled


def shard_of(journal_id: str) -> int:
    return int.from_bytes(hashlib.sha256(journal_id.encode()).digest()[:4], "big") % SHARDS


class AlreadyPosted(Exception):
    """The journal exists: this record was cleared before (a redelivery)."""


class ReversalsMoved(Exception):
    """Another reversal of the same redemption was posted since we read it: read again."""


class SourceMissing(Exception):
    """The record's source item (its redemption / reversal) is not in the table: a poison record."""


class LedgerStore(FundingRuleStore):
    """Journals, postings and balances; funding rules (FundingRuleStore) beside them."""

    def __init__(self, client, table_name: str):
        super().__init__(client, table_name)
        self._journal = Journal.bound(client, table_name)
        self._posting = Posting.bound(client, table_name)
        self._balance = Balance.bound(client, table_name)
        self._source = ClearedSource.bound(client, table_name)

    # -- journals ----------------------------------------------------------------------------

    def post(
        self,
        journal: JournalTerms,
        *,
        business_date: str,
        due_date: str,
        posted_at: str,
        extra: dict[str, Any],
        source_key: dict[str, str] | None = None,
        reversal_of: tuple[str, int] | None = None,
        refund: int | None = None,
        also: tuple[Write, ...] | list[Write] = (),
    ) -> None:
        """Writes the journal, its postings and balance updates in ONE transaction, under the condition
        that the journal does not exist yet: a redelivered record can never post twice.

        `source_key` = the key ({"pk", "sk"}) of the redemption / reversal item the journal records:
        the same transaction takes it out of the clearing-pending index (REMOVE gsi2pk, gsi2sk), under
        `attribute_exists(pk)` so that no stub item is ever created (SourceMissing if it is absent).

        `reversal_of` = (redemption journal id, reversals counted on it when we read it): the
        redemption's journal is updated with what this reversal gave back, under the condition that
        no other reversal got in since. `refund` (of the order; only where the redemption charged a
        commission): added to its `refunded`, and the commission given back to its
        `commission_given_back`, so the next reversal gives back its part of what is left.

        `also`: writes of another store that must happen exactly when the journal is posted (the instant
        threshold's total and mark: coupons.data.instant_pending), in the same transaction."""
        S, J = self._source, self._journal
        tx = Transaction(self._client)
        self.add_journal(
            tx, journal, business_date=business_date, due_date=due_date, posted_at=posted_at, extra=extra
        )
        if source_key is not None:
            tx.update(
                S(source_key["pk"], source_key["sk"]),
                # Cleared: out of the sparse clearing-pending index (gsi2).
                [S.gsi2pk.remove(), S.gsi2sk.remove()],
                # The source must be there: an update never creates a stub item.
                S.pk.exists(),
                tag=_SOURCE,
            )
        for write in also:
            tx.add(write)
        if reversal_of is not None:
            redemption_journal, count = reversal_of
            given_back = [
                J.reversed[party].set(J.reversed[party] + amount)
                for party, amount in journal.party_shares.items()
            ]
            if refund is not None:
                given_back += [
                    J.refunded.add(refund),
                    J.commission_given_back.add(journal.charges.get("commission_back", 0)),
                ]
            tx.update(
                J(journal_pk(redemption_journal), JOURNAL_SK),
                [*given_back, J.reversal_count.set(J.reversal_count + 1)],
                # What this reversal gave back was split over what the parties had left when we read
                # it: only valid if no other reversal has moved it since.
                J.reversal_count == count,
                tag=_REVERSAL,
            )
        try:
            tx.commit()
        except TransactWriteError as error:
            if tx.failed(error, _JOURNAL):
                raise AlreadyPosted() from None
            if tx.failed(error, _SOURCE):
                raise SourceMissing(f"{source_key['pk']} / {source_key['sk']} is not in the table") from None
            if tx.failed(error, _REVERSAL):
                raise ReversalsMoved() from None
            raise

    def add_journal(
        self,
        tx: Transaction,
        journal: JournalTerms,
        *,
        business_date: str,
        due_date: str,
        posted_at: str,
        extra: dict[str, Any],
        settled: dict[str, str] | None = None,
    ) -> None:
        """Adds the journal (under `attribute_not_exists`, tagged JOURNAL_TAG), its postings and balance
        updates to `tx`. `settled` ({"run_id", "settled_at"}): postings born settled, never in the
        unsettled index: a transfer's journal settles a balance, no run may settle it again."""
        shard = shard_of(journal.journal_id)
        J, P, B = self._journal, self._posting, self._balance
        record = J.from_record(
            {
                "journal_id": journal.journal_id,
                "source_id": journal.source_id,
                "kind": "JOURNAL",
                "source_kind": journal.kind,
                "currency": journal.currency,
                "legs": [{"account": leg.account, "amount": leg.amount} for leg in journal.legs],
                "party_shares": journal.party_shares,
                "rule": journal.rule,
                "business_date": business_date,
                "due_date": due_date,
                "posted_at": posted_at,
                "reversed": {party: 0 for party in journal.party_shares},
                "reversal_count": 0,
                **({"charges": journal.charges} if journal.charges else {}),
                **extra,
            },
            pk=journal_pk(journal.journal_id),
            sk=JOURNAL_SK,
        )
        # Journal ids derive from the record: the journal's condition is what tells a redelivery.
        tx.save(record, J.pk.does_not_exist(), tag=_JOURNAL)
        rule = journal.rule or {}
        rule_attributes = {
            name: rule[key]
            for name, key in (("rule_id", "rule_id"), ("rule_version", "version"))
            if rule.get(key) is not None
        }
        bal = getattr(B, balance_attribute(journal.currency), None)
        if bal is None:
            raise ValueError(f"{journal.currency} is not a currency the ledger keeps")
        # The merchant's leg carries the commission in it (statements: gross = amount + commission).
        charged = (journal.charges.get("commission") or {}).get("amount", 0) - journal.charges.get(
            "commission_back", 0
        )
        merchant = f"merchant:{extra['merchant_id']}" if charged and extra.get("merchant_id") else None
        for leg in journal.legs:
            unsettled = (
                {}
                if settled or not settled_by_runs(leg.account)
                else {
                    # Until settlement claims it (sparse): UNSETTLED#{the ENTRIES shard}.
                    "gsi1pk": unsettled_partition(shard),
                    "gsi1sk": unsettled_sort_key(due_date, leg.account, journal.journal_id),
                }
            )
            posting = P.from_record(
                {
                    "account": leg.account,
                    "amount": leg.amount,
                    "currency": journal.currency,
                    "journal_id": journal.journal_id,
                    "source_id": journal.source_id,
                    "source_kind": journal.kind,
                    "business_date": business_date,
                    "due_date": due_date,
                    "posted_at": posted_at,
                    "settled": bool(settled),
                    **(settled or {}),
                    **rule_attributes,
                    **({"commission": charged} if leg.account == merchant else {}),
                    **{k: v for k, v in extra.items() if k in POSTING_EXTRA},
                },
                pk=entries_pk(leg.account, shard),
                sk=entry_sk(business_date, journal.journal_id),
                **unsettled,
            )
            tx.save(posting)
            # ADD: the balance item is made by its first posting, and concurrent journals add, not overwrite.
            tx.update(
                B(balance_pk(leg.account, shard), BALANCE_SK),
                [bal.add(leg.amount), B.account.set(leg.account)],
            )

    def journal(self, journal_id: str) -> dict[str, Any] | None:
        try:
            return self._journal.get(journal_pk(journal_id), JOURNAL_SK, consistent_read=True).record()
        except self._journal.DoesNotExist:
            return None

    def journals(self, journal_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The journals that exist among `journal_ids` (at most 100), read as of one moment
        (TransactGetItems): a reversal asks whether it is posted and what its redemption's journal
        has left in one read, and the two answers cannot straddle another delivery's posting."""
        with TransactGet(connection=connection(self._client)) as read:
            futures = [read.get(self._journal, journal_pk(j), JOURNAL_SK) for j in journal_ids]
        found: dict[str, dict[str, Any]] = {}
        for future in futures:
            try:
                record = future.get().record()
            except self._journal.DoesNotExist:
                continue
            found[record["journal_id"]] = record
        return found

    # -- balances and entries ----------------------------------------------------------------

    def balance(self, account: str) -> dict[str, int]:
        """Current balance per currency: the sum of the account's shards (one batch read)."""
        keys = [(balance_pk(account, s), BALANCE_SK) for s in range(SHARDS)]
        totals: dict[str, int] = {}
        for shard in self._balance.batch_get(keys, consistent_read=True):
            for name, value in shard.record().items():
                if name.startswith("bal_"):
                    totals[name[4:]] = totals.get(name[4:], 0) + value
        return totals

    def entries(
        self,
        account: str,
        *,
        from_date: str,
        to_date: str,
        start: tuple[int, dict[str, Any] | None],
        limit: int,
    ) -> tuple[list[dict[str, Any]], tuple[int, dict[str, Any]] | None]:
        """Postings with business dates in [from_date, to_date], shard after shard; `start` and the
        returned position are (shard, last key in DynamoDB's form) so that a page picks up where the
        last one ended (paging.encode_position / decode_position with the Posting model)."""
        shard, last_key = start
        P = self._posting
        found: list[dict[str, Any]] = []
        while shard < SHARDS and len(found) < limit:
            page = P.query(
                entries_pk(account, shard),
                P.sk.between(from_date, f"{to_date}#~"),
                consistent_read=True,
                limit=limit - len(found),
                last_evaluated_key=last_key or None,
            )
            found += [posting.record() for posting in page]
            last_key = page.last_evaluated_key
            if not last_key:
                shard, last_key = shard + 1, None
        return found, ((shard, last_key) if shard < SHARDS else None)


__all__ = [
    "SHARDS", "UNSETTLED", "POSTING_EXTRA", "LedgerStore", "AlreadyPosted", "ReversalsMoved", "SourceMissing",
    "shard_of", "unsettled_partition", "unsettled_sort_key",
]  # fmt: skip
