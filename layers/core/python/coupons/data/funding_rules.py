"""Funding rules and their versions in the main table (the rule store half of coupons.data.ledger's
LedgerStore): a rule's header and its versions share one partition, FUNDINGRULE#{rule_id}."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.pagination import ResultIterator

from coupons.data.idempotency import COMPLETION, raise_if_lock_lost
from coupons.data.models.base import Transaction, Write, failed_condition
from coupons.data.models.funding import (
    RULE_SK,
    FundingRule,
    FundingRuleVersion,
    decoded,
    rule_pk,
    version_sk,
)
from coupons.data.versions import append_version


class FundingRuleStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._rule = FundingRule.bound(client, table_name)
        self._version = FundingRuleVersion.bound(client, table_name)

    def put_rule(
        self, rule: dict[str, Any], version: dict[str, Any], *, completion: Write | None = None
    ) -> None:
        """The rule and its version 1; with `completion` (the Idempotency-Key's COMPLETED record)."""
        header = self._rule.from_record(rule, pk=rule_pk(rule["rule_id"]), sk=RULE_SK)
        first = self._version.from_record(version, pk=rule_pk(rule["rule_id"]), sk=version_sk(1))
        tx = Transaction(self._client)
        # The id is fresh from the CSPRNG: a collision is an error, never an overwrite of another rule.
        tx.save(header, self._rule.pk.does_not_exist())
        tx.save(first, self._version.pk.does_not_exist())
        if completion is not None:
            tx.add(completion, tag=COMPLETION)
        try:
            tx.commit()
        except TransactWriteError as error:
            if completion is not None:
                raise_if_lock_lost(error, tx)
            raise

    def put_version(self, rule_id: str, version: dict[str, Any], *, completion: Write | None = None) -> bool:
        """Appends version n; False if version n exists (another writer got there first). With
        `completion` (the Idempotency-Key's COMPLETED record), in one transaction with it."""
        item = self._version.from_record(version, pk=rule_pk(rule_id), sk=version_sk(version["version"]))
        return append_version(self._client, item, completion=completion)

    def approve_version(
        self, rule_id: str, number: int, *, effective_from: str, approved_at: str, approved_by: str
    ) -> None:
        """Marks a proposed version approved from `effective_from`. Approving twice is harmless: a version
        already approved keeps its first approval (the condition fails and nothing is written)."""
        model = self._version
        try:
            model(rule_pk(rule_id), version_sk(number)).update(
                actions=[
                    model.status.set("APPROVED"),
                    model.effective_from.set(effective_from),
                    model.approved_at.set(approved_at),
                    model.approved_by.set(approved_by),
                    # SET reads the item as it was: the start first proposed is kept.
                    model.proposed_from.set(model.effective_from),
                ],
                # Only a proposal is approved, once: an approved version's start never moves again.
                condition=model.pk.exists() & (model.status.does_not_exist() | (model.status == "PROPOSED")),
            )
        except UpdateError as error:
            if not failed_condition(error):
                raise

    def rule(self, rule_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The rule's header and every version (at most funding.MAX_VERSIONS), page after page: versions
        with many merchant overrides can pass the 1 MB a Query page holds."""
        # One Query for the header and the versions: PynamoDB's model query would decode every item as
        # one model, so the partition's pages are read through the model's connection and each item is
        # decoded by the model its sort key names.
        items = list(
            ResultIterator(
                self._rule._get_connection().query,
                (rule_pk(rule_id),),
                {"consistent_read": True},
                map_fn=lambda raw: decoded(self._rule, self._version, raw),
            )
        )
        header = next((i for i in items if isinstance(i, self._rule)), None)
        if header is None:
            return None
        versions = [i.record() for i in items if isinstance(i, self._version)]
        return header.record(), versions
