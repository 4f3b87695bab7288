"""An in-memory table that conditions the guards exactly as the store's transaction would, and the
evaluation loop the service runs around it: the executable specification of docs/risk.md, used by the
unit tests, the hypothesis properties and the backtest (bench/risk_backtest.py).

What it models of DynamoDB: all-or-nothing (any failed condition cancels every guard), every failed
condition reported with the item as it was (ALL_OLD), a comparison on a missing attribute is false.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from coupons.domain.risk import keys
from coupons.domain.risk.plan import (
    Bound,
    Context,
    CounterUpdate,
    Decision,
    EntryCheck,
    Guard,
    Plan,
    Retry,
    entry_live,
    plan,
    resolve,
)
from coupons.domain.risk.rules import RuleSet


def _bound_passes(bound: Bound, item: dict[str, Any]) -> bool:
    value = item.get(bound.attribute)
    if bound.measure == "count":
        return value is None or value < bound.threshold
    if bound.measure == "amount":
        if bound.room < 0:
            return False  # `a <= :room` alone: false on a missing attribute, and a >= 0 > room
        return value is None or value <= bound.room
    return value is None or bound.member in value or len(value) < bound.threshold


@dataclass
class MemoryTable:
    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    transactions: int = 0

    def put_entry(self, list_name: str, value: str, *, expires_at: int | None = None) -> None:
        item: dict[str, Any] = {"reason": "test"}
        if expires_at is not None:
            item["expires_at"] = expires_at
        self.items[keys.entry_key(list_name, value)] = item

    def _passes(self, guard: Guard) -> bool:
        item = self.items.get((guard.pk, guard.sk))
        if isinstance(guard, EntryCheck):
            return not entry_live(item, guard.now)
        return all(_bound_passes(b, item or {}) for b in guard.bounds)

    def commit(self, guards: tuple[Guard, ...]) -> dict[int, dict[str, Any] | None]:
        """Applies every guard, or none: {} on commit, else {guard index: item as it was}."""
        self.transactions += 1
        keys_seen = [(g.pk, g.sk) for g in guards]
        if len(set(keys_seen)) != len(keys_seen):
            raise ValueError("two actions on one item: DynamoDB refuses the whole transaction")
        failed = {
            i: copy.deepcopy(self.items.get((g.pk, g.sk)))
            for i, g in enumerate(guards)
            if not self._passes(g)
        }
        if failed:
            return failed
        for guard in guards:
            if isinstance(guard, CounterUpdate):
                item = self.items.setdefault((guard.pk, guard.sk), {})
                for attribute, step in guard.adds:
                    item[attribute] = item.get(attribute, 0) + step
                for attribute, value in guard.members:
                    item.setdefault(attribute, set()).add(value)
                item["expires_at"] = guard.expires_at
        return {}


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    attempts: int
    committed: Plan | None  # None when denied: nothing was written


def evaluate(rule_set: RuleSet, ctx: Context, table: MemoryTable) -> Evaluation:
    """The service's loop: plan, commit, resolve a cancellation, until committed or denied. Every retry
    moves the deciding rule strictly earlier, so at most len(rules) + 1 commits (plus the rare retry of
    an unexplained cancellation, bounded here as the service bounds contention)."""
    first_match: int | None = None
    attempts = 0
    limit = 2 * (len(rule_set.rules) + 1)
    while attempts < limit:
        attempted = plan(rule_set, ctx, first_match=first_match)
        attempts += 1
        failed = table.commit(attempted.guards)
        if not failed:
            return Evaluation(attempted.decision, attempts, attempted)
        outcome = resolve(rule_set, attempted, failed)
        if isinstance(outcome, Decision):
            return Evaluation(outcome, attempts, None)
        assert isinstance(outcome, Retry)
        first_match = outcome.first_match
    raise RuntimeError("no decision within the bound")  # the service answers 409 contention here
