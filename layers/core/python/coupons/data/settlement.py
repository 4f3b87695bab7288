"""Settlement runs in the main table: the run, its parties, the lines each party is settled on.

  SETTLEMENT#{run_id}                  / RUN               status, attempt, execution, totals
                                                             gsi1: SETTLEMENTRUNS / {business_date}
  SETTLEMENT#{run_id}#PARTIES#{bucket} / {party}           per currency: net, decision, transfer,
                                                             instruction id, channel reference
  SETTLEMENT#{run_id}#LINES#{party}    / {journal_id}      a copy of each posting the run claimed
  CARRY#{party}                        / {run_id}#{CUR}    an amount carried into the next run

A posting is claimed by updating it under `attribute_not_exists(run_id)` (so it belongs to at most
one run) and removing its unsettled-index keys, in the same transaction that writes its line: a line
exists exactly when its posting is claimed by that run, so a resumed run reads what it claimed from
its lines (strongly consistent) rather than from an index. Claims close when the run is planned
(`planned_at` on the run): every claim transaction, and the Put of a party record, carries a
ConditionCheck on it, so nothing is claimed for a run whose parties are listed and netted already.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from coupons.data.items import from_item, to_item
from coupons.data.ledger import UNSETTLED, unsettled_partition
from coupons.domain.settlement import PARTY_BUCKETS, STATEMENT_COLUMNS, party_bucket

# TransactWriteItems takes at most 100 actions: the run's ConditionCheck, then 2 per claim (posting
# update + line put).
CLAIMS_PER_TRANSACTION = 49
SETTLES_PER_TRANSACTION = 100
# What a run's line copies from its posting: what a statement shows, and whose line it is.
_LINE_FIELDS = (*STATEMENT_COLUMNS, "account", "source_id", "brand_id", "carried_from")


def run_key(run_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"SETTLEMENT#{run_id}"}, "sk": {"S": "RUN"}}


def parties_partition(run_id: str, bucket: int) -> str:
    return f"SETTLEMENT#{run_id}#PARTIES#{bucket}"


def party_key(run_id: str, party: str) -> dict[str, Any]:
    return {"pk": {"S": parties_partition(run_id, party_bucket(party))}, "sk": {"S": party}}


def lines_partition(run_id: str, party: str) -> str:
    return f"SETTLEMENT#{run_id}#LINES#{party}"


class RunPlanned(Exception):
    """The run's parties are planned: it claims nothing more (what is left waits for the next run)."""


class RunExists(Exception):
    def __init__(self, run: dict[str, Any]):
        super().__init__(run.get("run_id"))
        self.run = run


class SettlementStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._table = table_name

    # -- the run -----------------------------------------------------------------------------

    def create_run(self, record: dict[str, Any]) -> dict[str, Any]:
        """Creates the run; RunExists (with the stored run) if the date has one: one run per date."""
        item = {
            **{k: v["S"] for k, v in run_key(record["run_id"]).items()},
            "kind": "SETTLEMENT_RUN",
            "gsi1pk": "SETTLEMENTRUNS",
            "gsi1sk": record["business_date"],
            **record,
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as error:
            old = error.response.get("Item")
            raise RunExists(_clean(from_item(old)) if old else self.run(record["run_id"])) from None
        return record

    def run(self, run_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(TableName=self._table, Key=run_key(run_id), ConsistentRead=True).get(
            "Item"
        )
        return _clean(from_item(item)) if item else None

    def update_run(
        self, run_id: str, changes: dict[str, Any], *, expect: dict[str, Any] | None = None
    ) -> bool:
        """SET the changes if every `expect` attribute still holds its value; False if one does not."""
        names = {f"#c{i}": k for i, k in enumerate(changes)}
        values = {f":c{i}": v for i, v in enumerate(changes.values())}
        conditions = ["attribute_exists(pk)"]
        for i, (k, v) in enumerate((expect or {}).items()):
            names[f"#e{i}"] = k
            values[f":e{i}"] = v
            conditions.append(f"#e{i} = :e{i}")
        try:
            self._client.update_item(
                TableName=self._table,
                Key=run_key(run_id),
                UpdateExpression="SET " + ", ".join(f"#c{i} = :c{i}" for i in range(len(changes))),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def close_claims(self, run_id: str, *, at: str) -> None:
        """Marks the run planned (`planned_at`, the first time's kept): from here on no claim and no
        new party record can commit for it (their transactions check this attribute)."""
        self._client.update_item(
            TableName=self._table,
            Key=run_key(run_id),
            UpdateExpression="SET planned_at = if_not_exists(planned_at, :at)",
            ConditionExpression="attribute_exists(pk)",  # never a stub run
            ExpressionAttributeValues=to_item({":at": at}),
        )

    def _claims_open(self, run_id: str) -> dict[str, Any]:
        """The ConditionCheck every claim carries: a posting claimed once Plan has listed the parties
        (and Pay perhaps netted their lines) would be settled without being paid, or make a party
        nobody pays, and the run could not close."""
        return {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": run_key(run_id),
                "ConditionExpression": "attribute_not_exists(planned_at)",
            }
        }

    def runs(self, *, limit: int, start: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict | None]:
        args: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "SETTLEMENTRUNS"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start:
            args["ExclusiveStartKey"] = start
        page = self._client.query(**args)
        return [_clean(from_item(i)) for i in page.get("Items", [])], page.get("LastEvaluatedKey")

    # -- selecting and claiming postings -----------------------------------------------------

    def unsettled(self, shard: int, up_to: str) -> Iterator[list[dict[str, Any]]]:
        """Pages of unsettled postings of one shard due on or before `up_to` (the index is sparse:
        a claimed posting has left it). The index is eventually consistent: a posting it does not
        show yet is claimed by the next run, never lost."""
        args: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :pk AND gsi1sk <= :hi",
            "ExpressionAttributeValues": to_item({":pk": unsettled_partition(shard), ":hi": f"{up_to}#~"}),
        }
        while True:
            page = self._client.query(**args)
            yield [from_item(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def ensure_party(self, run_id: str, party: str, *, created_at: str) -> None:
        """The party's record, before any of its postings is claimed: a run that stops between the two
        still finds the party (and its lines) when it resumes."""
        item = {
            **{k: v["S"] for k, v in party_key(run_id, party).items()},
            "kind": "SETTLEMENT_PARTY",
            "run_id": run_id,
            "party": party,
            "created_at": created_at,
        }
        try:
            self._client.transact_write_items(
                TransactItems=[
                    self._claims_open(run_id),
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item(item),
                            # Already there when this run met the party in another shard or attempt.
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except self._client.exceptions.TransactionCanceledException as error:
            codes = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if codes[:1] == ["ConditionalCheckFailed"]:
                raise RunPlanned(run_id) from None
            if codes[1:2] != ["ConditionalCheckFailed"]:
                raise

    def claim(self, run_id: str, postings: list[dict[str, Any]], *, claimed_at: str) -> tuple[int, int]:
        """Claims postings for the run, each with its line, in transactions of CLAIMS_PER_TRANSACTION.
        Returns (claimed now, taken by another run). A posting this run already claimed counts as
        neither (an index that lags, or a retry). RunPlanned once the run is planned: what this call
        claimed until then stays claimed (planned after it), the rest is left for the next run."""
        claimed = taken = 0
        pending = list(postings)
        while pending:
            chunk, pending = pending[:CLAIMS_PER_TRANSACTION], pending[CLAIMS_PER_TRANSACTION:]
            while chunk:
                try:
                    self._client.transact_write_items(
                        TransactItems=self._claim_actions(run_id, chunk, claimed_at)
                    )
                    claimed += len(chunk)
                    chunk = []
                except self._client.exceptions.TransactionCanceledException as error:
                    reasons = error.response.get("CancellationReasons", [])
                    if reasons[:1] and reasons[0].get("Code") == "ConditionalCheckFailed":
                        raise RunPlanned(run_id) from None
                    # Action 1 + 2i is posting i's update, 2 + 2i its line.
                    refused = {
                        (i - 1) // 2
                        for i, r in enumerate(reasons)
                        if i and r.get("Code") == "ConditionalCheckFailed"
                    }
                    if not refused:
                        raise  # a conflict or throttle: the step fails and is retried
                    for i in refused:
                        old = from_item(reasons[1 + 2 * i].get("Item") or {})
                        if old.get("run_id") != run_id:
                            taken += 1
                    chunk = [p for i, p in enumerate(chunk) if i not in refused]
        return claimed, taken

    def _claim_actions(self, run_id: str, chunk: list[dict[str, Any]], claimed_at: str) -> list[dict]:
        actions: list[dict[str, Any]] = [self._claims_open(run_id)]
        for posting in chunk:
            line = {
                "pk": lines_partition(run_id, posting["account"]),
                "sk": posting["journal_id"],
                "kind": "SETTLEMENT_LINE",
                "run_id": run_id,
                "posting_pk": posting["pk"],
                "posting_sk": posting["sk"],
                **{k: posting[k] for k in _LINE_FIELDS if k in posting},
            }
            actions.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": to_item({"pk": posting["pk"], "sk": posting["sk"]}),
                        # A posting belongs to at most one run; the index keys go with the claim,
                        # so the next run's selection no longer sees it.
                        "UpdateExpression": "SET run_id = :run, claimed_at = :at REMOVE gsi1pk, gsi1sk",
                        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(run_id)",
                        "ExpressionAttributeValues": to_item({":run": run_id, ":at": claimed_at}),
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
            actions.append({"Put": {"TableName": self._table, "Item": to_item(line)}})
        return actions

    # -- parties and lines -------------------------------------------------------------------

    def parties(self, run_id: str) -> Iterator[dict[str, Any]]:
        for bucket in range(PARTY_BUCKETS):
            start = None
            while True:
                records, start = self.party_page(run_id, bucket, start=start, limit=1000)
                yield from records
                if not start:
                    break

    def party_page(
        self, run_id: str, bucket: int, *, start: dict[str, Any] | None, limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        args: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": parties_partition(run_id, bucket)}},
            "ConsistentRead": True,
            "Limit": limit,
        }
        if start:
            args["ExclusiveStartKey"] = start
        page = self._client.query(**args)
        return [_clean(from_item(i)) for i in page.get("Items", [])], page.get("LastEvaluatedKey")

    def party(self, run_id: str, party: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key=party_key(run_id, party), ConsistentRead=True
        ).get("Item")
        return _clean(from_item(item)) if item else None

    def lines(self, run_id: str, party: str) -> list[dict[str, Any]]:
        args: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": lines_partition(run_id, party)}},
            "ConsistentRead": True,
        }
        found: list[dict[str, Any]] = []
        while True:
            page = self._client.query(**args)
            found += [_clean(from_item(i)) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return found
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def set_outcomes(self, run_id: str, party: str, currencies: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Records the party's netting once; a retry finds it there and keeps the first one (the
        lines of a party cannot change after the claim step, so both would be equal anyway)."""
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=party_key(run_id, party),
                UpdateExpression="SET currencies = :c",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(currencies)",
                ExpressionAttributeValues=to_item({":c": currencies}),
                ReturnValues="ALL_NEW",
            )
            return _clean(from_item(answer["Attributes"]))
        except self._client.exceptions.ConditionalCheckFailedException:
            return self.party(run_id, party)

    def set_transfer(
        self, run_id: str, party: str, currency: str, changes: dict[str, Any], *, from_status: str
    ) -> bool:
        """Moves one currency's transfer forward from `from_status`; False if it is no longer there."""
        names = {"#cur": currency, "#st": "status"}
        values: dict[str, Any] = {":from": from_status}
        sets = []
        for i, (k, v) in enumerate(changes.items()):
            names[f"#f{i}"] = k
            values[f":v{i}"] = v
            sets.append(f"currencies.#cur.#f{i} = :v{i}")
        try:
            self._client.update_item(
                TableName=self._table,
                Key=party_key(run_id, party),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="currencies.#cur.#st = :from",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def set_party(self, run_id: str, party: str, changes: dict[str, Any]) -> None:
        names = {f"#f{i}": k for i, k in enumerate(changes)}
        values = {f":v{i}": v for i, v in enumerate(changes.values())}
        self._client.update_item(
            TableName=self._table,
            Key=party_key(run_id, party),
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes))),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
        )

    def carry_forward(self, carry: dict[str, Any], *, shard: int) -> None:
        """The amount a party carries into the next run, as an unsettled posting of its own (not a
        ledger posting: the balances already hold it). Written once: its id derives from the run."""
        item = {
            "pk": f"CARRY#{carry['account']}",
            "sk": f"{carry['carried_from']}#{carry['currency']}",
            "kind": "CARRY_FORWARD",
            "source_kind": "CARRY_FORWARD",
            "gsi1pk": unsettled_partition(shard),
            "gsi1sk": f"{carry['due_date']}#{carry['account']}#{carry['journal_id']}",
            **carry,
        }
        self._put_new(item)  # an earlier attempt of this run may have written it

    def _put_new(self, item: dict[str, Any]) -> bool:
        """Puts an item that must never be overwritten; False if it exists."""
        try:
            self._client.put_item(
                TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def mark_settled(self, run_id: str, lines: list[dict[str, Any]], *, settled_at: str) -> None:
        """Marks the claimed postings settled by this run, SETTLES_PER_TRANSACTION per request. The
        condition keeps a posting settled by the run that claimed it, and by no other."""
        for i in range(0, len(lines), SETTLES_PER_TRANSACTION):
            chunk = lines[i : i + SETTLES_PER_TRANSACTION]
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": to_item({"pk": line["posting_pk"], "sk": line["posting_sk"]}),
                            "UpdateExpression": "SET settled = :t, settled_at = :at",
                            "ConditionExpression": "run_id = :run",
                            "ExpressionAttributeValues": to_item(
                                {":t": True, ":at": settled_at, ":run": run_id}
                            ),
                        }
                    }
                    for line in chunk
                ]
            )


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    for k in ("pk", "sk", "gsi1pk", "gsi1sk"):
        record.pop(k, None)
    return record


__all__ = ["UNSETTLED", "RunExists", "RunPlanned", "SettlementStore"]
