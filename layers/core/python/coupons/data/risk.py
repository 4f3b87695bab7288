"""Risk lists, rule set versions, and the guards a redemption's one transaction carries (docs/risk.md).

The store writes list entries and rule set versions (the admin API), and turns the pure plan's guards
(coupons.domain.risk.plan) into actions of another store's Transaction, tagged ("risk", i), each
returning its item as it was when its condition fails (ALL_OLD): `resolve` reads the rule from that.
"""

from __future__ import annotations

import json
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition, size

from coupons.data.models.base import Transaction, failed_condition, plain_image
from coupons.data.models.risk import (
    RULES_PK,
    Counter,
    DecisionRecord,
    GuessCounter,
    ListEntry,
    RuleSetVersion,
    amount,
    decision_pk,
    decision_sk,
    distinct,
    list_index_pk,
    rules_sk,
)
from coupons.data.paging import page_of
from coupons.domain.risk import guessing, keys
from coupons.domain.risk.plan import Bound, CounterUpdate, EntryCheck, Guard
from coupons.domain.risk.rules import EMPTY, RuleSet, RuleSetTerms


class RiskGuardsFailed(Exception):
    """Some risk guards' conditions failed: {guard index: its item as it was (None: absent)}."""

    def __init__(self, failed: dict[int, dict[str, Any] | None]):
        super().__init__("risk guards failed")
        self.failed = failed


class VersionTaken(Exception):
    """Another admin stored this rule set version first (the caller reads the latest and tries again)."""


def tag(index: int) -> tuple[str, int]:
    return ("risk", index)


class RiskGuards:
    """The plan's guards as actions of a Transaction, and the failed ones read back from a cancellation."""

    def __init__(self, client, table_name: str):
        self._entry = ListEntry.bound(client, table_name)
        self._counter = Counter.bound(client, table_name)

    def add(self, tx: Transaction, guards: tuple[Guard, ...]) -> None:
        E, C = self._entry, self._counter
        for index, guard in enumerate(guards):
            if isinstance(guard, EntryCheck):
                # Not on the list, or its entry has expired: TTL deletes days late, so the comparison
                # with now (not TTL) ends an entry on time; an entry without expires_at never ends.
                tx.condition_check(
                    E,
                    guard.pk,
                    guard.sk,
                    E.pk.does_not_exist() | (E.expires_at <= guard.now),
                    return_values="ALL_OLD",
                    tag=tag(index),
                )
                continue
            tx.update(
                C(guard.pk, guard.sk),
                _counting(C, guard),
                _bounds(C, guard),
                return_values="ALL_OLD",
                tag=tag(index),
            )

    @staticmethod
    def failed(tx: Transaction, error: TransactWriteError, guards: tuple[Guard, ...]) -> dict[int, Any]:
        """{guard index: item as it was} of the guards whose condition failed (empty: none did)."""
        found: dict[int, Any] = {}
        for index in range(len(guards)):
            if tx.failed(error, tag(index)):
                raw = tx.reason(error, tag(index)).raw_item
                found[index] = plain_image(raw) if raw else None
        return found


def _counting(C: type[Counter], guard: CounterUpdate) -> list:
    actions = [C.expires_at.set(guard.expires_at)]  # TTL: gone an hour after its window ends
    for name, step in guard.adds:
        actions.append((C.n if name == "n" else amount(name)).add(step))
    for name, digest in guard.members:
        actions.append(distinct(name).add({digest}))  # a value already in the set is not counted again
    return actions


def _bound(C: type[Counter], bound: Bound) -> Condition:
    """One rule asserted NOT to hold (its ADD must leave the measure within the threshold)."""
    if bound.measure == "count":
        # After the ADD n <= threshold: this event is not the one over it.
        return C.n.does_not_exist() | (C.n < bound.threshold)
    if bound.measure == "amount":
        attribute = amount(bound.attribute)
        if bound.room < 0:
            return attribute <= bound.room  # the event alone is over: never holds, even on a new window
        return attribute.does_not_exist() | (attribute <= bound.room)
    attribute = distinct(bound.attribute)
    # A value already counted passes; a new one only while the set has room for it.
    return attribute.does_not_exist() | attribute.contains(bound.member) | (size(attribute) < bound.threshold)


def _bounds(C: type[Counter], guard: CounterUpdate) -> Condition | None:
    condition = None
    for bound in guard.bounds:
        condition = _bound(C, bound) if condition is None else condition & _bound(C, bound)
    return condition


class RiskStore:
    """List entries and rule set versions (the lists and rules API)."""

    def __init__(self, client, table_name: str):
        self._entry = ListEntry.bound(client, table_name)
        self._rules = RuleSetVersion.bound(client, table_name)
        self._decision = DecisionRecord.bound(client, table_name)
        self._client = client

    # -- lists ------------------------------------------------------------------------------------

    def put_entry(self, list_name: str, value: str, *, reason: str, expires_at: int | None, by: str, at: str):
        """Puts (or replaces: a new reason or expiry) the entry of `value` on `list_name`."""
        pk, sk = keys.entry_key(list_name, value)
        entry = self._entry(
            pk,
            sk,
            list_name=list_name,
            value=value,
            reason=reason,
            created_at=at,
            created_by=by,
            expires_at=expires_at,
            gsi1pk=list_index_pk(list_name),
            gsi1sk=keys.part(value),
        )
        entry.save()
        return entry.record()

    def delete_entry(self, list_name: str, value: str) -> bool:
        """False when there was no such entry."""
        pk, sk = keys.entry_key(list_name, value)
        E = self._entry
        try:
            # Only an entry that is there: a DELETE of nothing says so (404) rather than pretend.
            E(pk, sk).delete(condition=E.pk.exists())
        except Exception as error:
            if failed_condition(error):
                return False
            raise
        return True

    def entries(self, list_name: str, *, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
        return page_of(
            self._entry,
            list_index_pk(list_name),
            index_name="gsi1",
            query={"list": "risk-list", "name": list_name},
            limit=limit,
            cursor=cursor,
        )

    # -- decisions --------------------------------------------------------------------------------

    def record_decision(self, record: dict[str, Any]) -> None:
        """One copy per subject, all or none (one TransactWriteItems; the API's role writes no batches):
        each subject's decisions are one Query. Written after the redemption decided (a DENY wrote
        nothing else; a REVIEW's redemption record carries its rule too)."""
        D = self._decision
        tx = Transaction(self._client)
        for subject in record["subjects"]:
            copy = D.from_record(
                record, pk=decision_pk(subject), sk=decision_sk(record["at"], record["decision_id"])
            )
            tx.save(copy)  # a new decision id: no condition needed, a retry writes the same copy again
        tx.commit()

    def decisions(self, subject: str, *, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
        """A subject's decisions, newest first."""
        return page_of(
            self._decision,
            decision_pk(subject),
            query={"list": "risk-decisions", "subject": subject},
            limit=limit,
            cursor=cursor,
            scan_index_forward=False,
        )

    # -- rules ------------------------------------------------------------------------------------

    def latest_rules(self) -> RuleSet | None:
        found = list(self._rules.query(RULES_PK, scan_index_forward=False, limit=1, consistent_read=True))
        if not found:
            return None
        return RuleSet.model_validate({**json.loads(found[0].rules), "version": found[0].version})

    def put_rules(self, terms: RuleSetTerms, *, version: int, by: str, at: str) -> RuleSet:
        R = self._rules
        item = R(
            RULES_PK,
            rules_sk(version),
            version=version,
            rules=terms.model_dump_json(exclude_defaults=False),
            created_at=at,
            created_by=by,
        )
        try:
            # A version is written once: two admins saving at once get distinct versions, never one
            # overwriting the other's.
            item.save(condition=R.pk.does_not_exist())
        except Exception as error:
            if failed_condition(error):
                raise VersionTaken() from None
            raise
        return RuleSet(version=version, rules=terms.rules)


__all__ = ["EMPTY", "GuessGate", "RiskGuards", "RiskGuardsFailed", "RiskStore", "VersionTaken"]


# -- code guessing ---------------------------------------------------------------------------------


class GuessGate:
    """The miss counters of coupons.domain.risk.guessing: asserted by every lookup's write, added to
    by a miss."""

    def __init__(self, client, table_name: str):
        self._client = client
        self._counter = GuessCounter.bound(client, table_name)

    def add_checks(self, tx: Transaction, counters: list[guessing.GuessCounter]) -> None:
        G = self._counter
        for counter in counters:
            # Under the limit of misses in this window: a caller past it finds nothing more, not even
            # a real code (else the guess that hits would still succeed).
            tx.condition_check(
                G,
                counter.pk,
                counter.sk,
                G.n.does_not_exist() | (G.n < counter.limit),
                tag=("guess", counter.scope),
            )

    @staticmethod
    def refused(tx: Transaction, error: TransactWriteError, counters: list[guessing.GuessCounter]) -> bool:
        return any(tx.failed(error, ("guess", c.scope)) for c in counters)

    def miss(self, counters: list[guessing.GuessCounter]) -> bool:
        """Counts one miss on every counter in ONE transaction; False when one is at its limit (this
        miss is over it, and is not counted)."""
        if not counters:
            return True
        G = self._counter
        tx = Transaction(self._client)
        for counter in counters:
            tx.update(
                G(counter.pk, counter.sk),
                [G.n.add(1), G.expires_at.set(counter.expires_at)],
                # Counted only under the limit: past it the caller is refused, the count stays bounded.
                G.n.does_not_exist() | (G.n < counter.limit),
                tag=("guess", counter.scope),
            )
        try:
            tx.commit()
        except TransactWriteError as error:
            if self.refused(tx, error, counters):
                return False
            raise
        return True
