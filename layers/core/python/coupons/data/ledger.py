"""The ledger in the main table: journals, append-only postings, sharded balances, funding rules.

  JOURNAL#{journal_id}           / JOURNAL            the journal: legs, shares, rule; a redemption's
                                                       also counts what its reversals gave back
  ENTRIES#{account}#{shard}      / {business_date}#{journal_id}   one posting per leg (append-only)
                                 gsi1: UNSETTLED#{shard} / {due_date}#{account}#{journal_id}
                                 (until settlement claims it: sparse)
  BALANCE#{account}#{shard}      / BALANCE            running balance per currency (`bal_{CUR}`)
  FUNDINGRULE#{rule_id}          / RULE | VERSION#{n}

Postings and balances of an account are spread over SHARDS partition keys (the shard is a hash of
the journal id), so the platform account, which nearly every journal touches, is not one hot item:
each journal writes 2 items on one of its shards (a posting and a balance update, 2 WCU each).

Unsettled postings: every posting carries gsi1 keys `UNSETTLED#{shard}` (the shard of its ENTRIES
partition) / `{due_date}#{account}#{journal_id}`, so settlement finds what is due by a date with one
Query per shard. Settlement claims a posting by updating it (SET run_id ..., REMOVE gsi1pk, gsi1sk):
the index is sparse, it holds only what nobody has claimed yet.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

from coupons.data.idempotency import raise_if_lock_lost
from coupons.data.items import from_item, to_item
from coupons.domain.ledger import Journal

SHARDS = 32
UNSETTLED = "UNSETTLED#"
# Posting attributes copied from the record clearing was given (`extra`), for statements.
POSTING_EXTRA = (
    "redemption_id",
    "reversal_id",
    "campaign_id",
    "brand_id",
    "merchant_id",
    "store_id",
    "order_id",
    "code",
)
# Index keys: on items, never in what the API answers.
INDEX_KEYS = ("gsi1pk", "gsi1sk")


def unsettled_partition(shard: int) -> str:
    """gsi1 partition of the unsettled postings of ledger shard `shard` (0..SHARDS-1)."""
    return f"{UNSETTLED}{shard}"


def unsettled_sort_key(due_date: str, account: str, journal_id: str) -> str:
    return f"{due_date}#{account}#{journal_id}"


def shard_of(journal_id: str) -> int:
    return int.from_bytes(hashlib.sha256(journal_id.encode()).digest()[:4], "big") % SHARDS


def journal_key(journal_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"JOURNAL#{journal_id}"}, "sk": {"S": "JOURNAL"}}


def balance_key(account: str, shard: int) -> dict[str, Any]:
    return {"pk": {"S": f"BALANCE#{account}#{shard}"}, "sk": {"S": "BALANCE"}}


class AlreadyPosted(Exception):
    """The journal exists: this record was cleared before (a redelivery)."""


class ReversalsMoved(Exception):
    """Another reversal of the same redemption was posted since we read it: read again."""


class SourceMissing(Exception):
    """The record's source item (its redemption / reversal) is not in the table: a poison record."""


class LedgerStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._table = table_name

    # -- journals ----------------------------------------------------------------------------

    def post(
        self,
        journal: Journal,
        *,
        business_date: str,
        due_date: str,
        posted_at: str,
        extra: dict[str, Any],
        source_key: dict[str, str] | None = None,
        reversal_of: tuple[str, int] | None = None,
    ) -> None:
        """Writes the journal, its postings and balance updates in ONE transaction, under the condition
        that the journal does not exist yet: a redelivered record can never post twice.

        `source_key` = the key ({"pk", "sk"}) of the redemption / reversal item the journal records:
        the same transaction takes it out of the clearing-pending index (REMOVE gsi2pk, gsi2sk), under
        `attribute_exists(pk)` so that no stub item is ever created (SourceMissing if it is absent).

        `reversal_of` = (redemption journal id, reversals counted on it when we read it): the
        redemption's journal is updated with what this reversal gave back, under the condition that
        no other reversal got in since."""
        shard = shard_of(journal.journal_id)
        legs = [{"account": leg.account, "amount": leg.amount} for leg in journal.legs]
        record = {
            **{k: v["S"] for k, v in journal_key(journal.journal_id).items()},
            "journal_id": journal.journal_id,
            "source_id": journal.source_id,
            "kind": "JOURNAL",
            "source_kind": journal.kind,
            "currency": journal.currency,
            "legs": legs,
            "party_shares": journal.party_shares,
            "rule": journal.rule,
            "business_date": business_date,
            "due_date": due_date,
            "posted_at": posted_at,
            "reversed": {party: 0 for party in journal.party_shares},
            "reversal_count": 0,
            **extra,
        }
        # The journal's Put comes first: its condition is what tells a redelivery (`duplicate`).
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(record),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        source_at = None
        if source_key is not None:
            source_at = len(actions)
            actions.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": to_item({"pk": source_key["pk"], "sk": source_key["sk"]}),
                        # Cleared: out of the sparse clearing-pending index (gsi2).
                        "UpdateExpression": "REMOVE gsi2pk, gsi2sk",
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            )
        rule = journal.rule or {}
        rule_attributes = {
            name: rule[key]
            for name, key in (("rule_id", "rule_id"), ("rule_version", "version"))
            if rule.get(key) is not None
        }
        for leg in journal.legs:
            posting = {
                "pk": f"ENTRIES#{leg.account}#{shard}",
                "sk": f"{business_date}#{journal.journal_id}",
                "account": leg.account,
                "amount": leg.amount,
                "currency": journal.currency,
                "journal_id": journal.journal_id,
                "source_id": journal.source_id,
                "source_kind": journal.kind,
                "business_date": business_date,
                "due_date": due_date,
                "posted_at": posted_at,
                "settled": False,
                **rule_attributes,
                **{k: v for k, v in extra.items() if k in POSTING_EXTRA},
                # Until settlement claims it (sparse): UNSETTLED#{the ENTRIES shard}.
                "gsi1pk": unsettled_partition(shard),
                "gsi1sk": unsettled_sort_key(due_date, leg.account, journal.journal_id),
            }
            actions.append({"Put": {"TableName": self._table, "Item": to_item(posting)}})
            actions.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": balance_key(leg.account, shard),
                        "UpdateExpression": "ADD #bal :amount SET account = :account",
                        "ExpressionAttributeNames": {"#bal": f"bal_{journal.currency}"},
                        "ExpressionAttributeValues": to_item(
                            {":amount": leg.amount, ":account": leg.account}
                        ),
                    }
                }
            )
        reversal_at = None
        if reversal_of is not None:
            reversal_at = len(actions)
            redemption_journal, count = reversal_of
            names = {f"#p{i}": party for i, party in enumerate(journal.party_shares)}
            sets = ", ".join(f"reversed.#p{i} = reversed.#p{i} + :v{i}" for i in range(len(names)))
            values = {f":v{i}": journal.party_shares[party] for i, party in enumerate(journal.party_shares)}
            actions.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": journal_key(redemption_journal),
                        "UpdateExpression": f"SET {sets}, reversal_count = reversal_count + :one",
                        # What this reversal gave back was split over what the parties had left
                        # when we read it: only valid if no other reversal has moved it since.
                        "ConditionExpression": "reversal_count = :count",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": to_item({**values, ":one": 1, ":count": count}),
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=actions)
        except self._client.exceptions.TransactionCanceledException as error:
            codes = [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]

            def failed(at: int | None) -> bool:
                return at is not None and at < len(codes) and codes[at] == "ConditionalCheckFailed"

            if failed(0):
                raise AlreadyPosted() from None
            if failed(source_at):
                raise SourceMissing(f"{source_key['pk']} / {source_key['sk']} is not in the table") from None
            if failed(reversal_at):
                raise ReversalsMoved() from None
            raise

    def journal(self, journal_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key=journal_key(journal_id), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        record = from_item(item)
        record.pop("pk")
        record.pop("sk")
        return record

    def journals(self, journal_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The journals that exist among `journal_ids` (at most 100), read as of one moment
        (TransactGetItems): a reversal asks whether it is posted and what its redemption's journal
        has left in one read, and the two answers cannot straddle another delivery's posting."""
        answer = self._client.transact_get_items(
            TransactItems=[{"Get": {"TableName": self._table, "Key": journal_key(j)}} for j in journal_ids]
        )
        found: dict[str, dict[str, Any]] = {}
        for response in answer["Responses"]:
            if response.get("Item"):
                record = from_item(response["Item"])
                record.pop("pk")
                record.pop("sk")
                found[record["journal_id"]] = record
        return found

    # -- balances and entries ----------------------------------------------------------------

    def balance(self, account: str) -> dict[str, int]:
        """Current balance per currency: the sum of the account's shards (one batch read)."""
        keys = [balance_key(account, s) for s in range(SHARDS)]
        totals: dict[str, int] = {}
        request: dict[str, Any] | None = {self._table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            answer = self._client.batch_get_item(RequestItems=request)
            for item in answer["Responses"].get(self._table, []):
                for name, value in from_item(item).items():
                    if name.startswith("bal_"):
                        totals[name[4:]] = totals.get(name[4:], 0) + value
            request = answer.get("UnprocessedKeys") or None
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
        returned position are (shard, last key) so that a page picks up where the last one ended."""
        shard, last_key = start
        found: list[dict[str, Any]] = []
        while shard < SHARDS and len(found) < limit:
            args: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
                "ExpressionAttributeValues": to_item(
                    {":pk": f"ENTRIES#{account}#{shard}", ":lo": from_date, ":hi": f"{to_date}#~"}
                ),
                "Limit": limit - len(found),
                "ConsistentRead": True,
            }
            if last_key:
                args["ExclusiveStartKey"] = last_key
            page = self._client.query(**args)
            found += [from_item(i) for i in page.get("Items", [])]
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                shard, last_key = shard + 1, None
        for entry in found:
            for name in ("pk", "sk", *INDEX_KEYS):
                entry.pop(name, None)
        return found, ((shard, last_key) if shard < SHARDS else None)

    # -- funding rules -----------------------------------------------------------------------

    def put_rule(
        self, rule: dict[str, Any], version: dict[str, Any], *, completion: dict[str, Any] | None = None
    ) -> None:
        """The rule and its version 1; with `completion` (the Idempotency-Key's COMPLETED record)."""
        header = {"pk": f"FUNDINGRULE#{rule['rule_id']}", "sk": "RULE", **rule}
        first = {"pk": f"FUNDINGRULE#{rule['rule_id']}", "sk": "VERSION#000001", **version}
        actions = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(x),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for x in (header, first)
        ]
        try:
            self._client.transact_write_items(TransactItems=actions + ([completion.item()] if completion else []))
        except self._client.exceptions.TransactionCanceledException as error:
            if completion is not None:
                raise_if_lock_lost(error, len(actions))
            raise

    def put_version(
        self, rule_id: str, version: dict[str, Any], *, completion: dict[str, Any] | None = None
    ) -> bool:
        """Appends version n; False if version n exists (another writer got there first). With
        `completion` (the Idempotency-Key's COMPLETED record), in one transaction with it."""
        item = {"pk": f"FUNDINGRULE#{rule_id}", "sk": f"VERSION#{version['version']:06d}", **version}
        put = {
            "TableName": self._table,
            "Item": to_item(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        try:
            if completion is None:
                self._client.put_item(**put)
            else:
                self._client.transact_write_items(TransactItems=[{"Put": put}, completion.item()])
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        except self._client.exceptions.TransactionCanceledException as error:
            raise_if_lock_lost(error, 1)
            if error.response.get("CancellationReasons", [{}])[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True

    def approve_version(
        self, rule_id: str, number: int, *, effective_from: str, approved_at: str, approved_by: str
    ) -> None:
        """Marks a proposed version approved from `effective_from`. Approving twice is harmless: a version
        already approved keeps its first approval (the condition fails and nothing is written)."""
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self._table,
                Key=to_item({"pk": f"FUNDINGRULE#{rule_id}", "sk": f"VERSION#{number:06d}"}),
                UpdateExpression="SET #st = :approved, effective_from = :from, approved_at = :at, "
                "approved_by = :by, proposed_from = effective_from",
                # Only a proposal is approved, once: an approved version's start never moves again.
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(#st) OR #st = :proposed)",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues=to_item(
                    {
                        ":approved": "APPROVED",
                        ":proposed": "PROPOSED",
                        ":from": effective_from,
                        ":at": approved_at,
                        ":by": approved_by,
                    }
                ),
            )

    def rule(self, rule_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The rule's header and every version (at most funding.MAX_VERSIONS), page after page: versions
        with many merchant overrides can pass the 1 MB a Query page holds."""
        items: list[dict[str, Any]] = []
        args: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"FUNDINGRULE#{rule_id}"}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**args)
            items += [from_item(i) for i in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                break
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        header = next((i for i in items if i["sk"] == "RULE"), None)
        if header is None:
            return None
        versions = [i for i in items if i["sk"].startswith("VERSION#")]
        for record in [header, *versions]:
            record.pop("pk")
            record.pop("sk")
        return header, versions
