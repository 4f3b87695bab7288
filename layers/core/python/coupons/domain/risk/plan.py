"""The guards a redemption (or issuance) adds to its ONE TransactWriteItems, and how a cancellation maps
back to the rule that decided. Pure: no DynamoDB types; the store turns each guard into an action.

Every rule is asserted NOT to hold: a list rule by a ConditionCheck that the entry is absent or expired,
a velocity rule by a conditional update of its windowed counter that also counts this event. If every
assertion holds, the transaction commits: no rule matched, each counter counted the event exactly once.
If one fails, DynamoDB cancels everything (nothing written) and returns the items as they were
(ALL_OLD), from which `resolve` finds the first rule (in order) that holds:

- DENY: final, 403 risk_denied with that rule.
- REVIEW or ALLOW: the rule decides, so the next attempt plans with it as `first_match`: the rules
  before it are still asserted (they may have changed), its own and the later rules' list checks are
  dropped and their count/amount counters counted unconditionally. Each retry moves the first match
  strictly earlier, or commits: at most (rules + 1) attempts, and one when nothing matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coupons.domain.risk import keys
from coupons.domain.risk.rules import Action, Event, ListCondition, Rule, RuleSet, Subject, VelocityCondition


@dataclass(frozen=True)
class Context:
    """What a redemption (or an issuance) is about. `at`: Unix seconds. `amount`: what the event moves
    (the discount or gift-card take; the face value at issuance), minor units of `currency`.
    IPs are normalized by the caller (keys.normalize_ip). A subject the request did not give (no
    device_id) matches no rule on it."""

    event: Event
    at: int
    user_id: str | None
    campaign_id: str
    code: str
    amount: int
    currency: str
    merchant_id: str | None = None
    store_id: str | None = None
    device_id: str | None = None
    client_ip: str | None = None
    caller_ip: str | None = None

    def value(self, subject: Subject) -> str | None:
        if subject is Subject.STORE:
            # Store ids are a merchant's own: "s-1" at two merchants is two stores.
            return None if not (self.merchant_id and self.store_id) else f"{self.merchant_id}/{self.store_id}"
        return {
            Subject.USER: self.user_id,
            Subject.DEVICE: self.device_id,
            Subject.IP: self.client_ip,
            Subject.CALLER_IP: self.caller_ip,
            Subject.MERCHANT: self.merchant_id,
            Subject.CAMPAIGN: self.campaign_id,
            Subject.COUPON: self.code,
        }[subject]

    def list_values(self, condition: ListCondition) -> list[str]:
        """An ip list holds an address in whatever role it appears: the end user's or the caller's."""
        if condition.subject is Subject.IP:
            found = [v for v in (self.client_ip, self.caller_ip) if v]
        else:
            found = [v] if (v := self.value(condition.subject)) else []
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class EntryCheck:
    """ConditionCheck on a list entry: `attribute_not_exists(pk) OR expires_at <= :now` — the value is
    not on the list, or its entry has expired (TTL deletes lazily: an expired entry may still be read).
    An entry without expires_at never expires."""

    pk: str
    sk: str
    list_name: str
    now: int
    rules: tuple[int, ...]  # positions of the rules that assert it


@dataclass(frozen=True)
class Bound:
    """One rule's condition on a counter item (all of an item's bounds are ANDed):
    count:    `attribute_not_exists(n) OR n < :threshold`            (after the ADD: n <= threshold)
    amount:   `attribute_not_exists(a) OR a <= :room`, room = threshold − amount (a + amount <= threshold);
              when room < 0 the event alone is over: `a <= :room` alone, which never holds
    distinct: `attribute_not_exists(d) OR contains(d, :m) OR size(d) < :threshold`
              (a value already counted passes; a new one only while the set has room)"""

    rule: int
    measure: str
    attribute: str
    threshold: int
    amount: int = 0
    member: str | None = None

    @property
    def room(self) -> int:
        return self.threshold - self.amount


@dataclass(frozen=True)
class CounterUpdate:
    """Update of one windowed counter item: ADD each `adds` attribute, ADD each member to its string
    set, SET expires_at (TTL), under the AND of `bounds` (none: counted unconditionally)."""

    pk: str
    sk: str
    expires_at: int
    adds: tuple[tuple[str, int], ...]
    members: tuple[tuple[str, str], ...]
    bounds: tuple[Bound, ...]
    rules: tuple[int, ...]  # every rule counted here, asserted or not


Guard = EntryCheck | CounterUpdate


@dataclass(frozen=True)
class Decision:
    """What the rules decided: ALLOW with no rule when none matched."""

    action: Action
    version: int
    rule_id: str | None = None
    reason: str | None = None
    position: int | None = None

    def problem_extra(self) -> dict[str, Any]:
        """The 403 risk_denied document's extensions: which rule, of which version, and why."""
        return {"rule_id": self.rule_id, "rule_version": self.version, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    guards: tuple[Guard, ...]
    decision: Decision  # what a commit of this plan means
    first_match: int | None = None
    tags: tuple[tuple[str, int], ...] = field(default=())  # ("risk", i) for guard i

    @property
    def items(self) -> int:
        return len(self.guards)


def _attribute(condition: VelocityCondition) -> str:
    if condition.measure == "count":
        return "n"
    if condition.measure == "amount":
        return f"amt_{condition.currency}"
    return f"d_{condition.of.value}"


def plan(rule_set: RuleSet, ctx: Context, *, first_match: int | None = None) -> Plan:
    """The guards for `ctx` under `rule_set`; `first_match`: the rule `resolve` found deciding (REVIEW /
    ALLOW) on the previous attempt, None on the first."""
    checks: dict[tuple[str, str], tuple[str, list[int]]] = {}
    counters: dict[tuple[str, str], dict[str, Any]] = {}
    for position, rule in rule_set.for_event(ctx.event):
        asserted = first_match is None or position < first_match
        condition = rule.condition
        if isinstance(condition, ListCondition):
            if not asserted:
                continue  # decided or never reached: a list check would only cost an item
            for value in ctx.list_values(condition):
                key = keys.entry_key(condition.list, value)
                checks.setdefault(key, (condition.list, []))[1].append(position)
            continue
        subject_value = ctx.value(condition.per)
        if subject_value is None or (condition.measure == "amount" and condition.currency != ctx.currency):
            continue  # not about this event
        if condition.measure == "distinct" and ctx.value(condition.of) is None:
            continue
        seconds = condition.window.seconds
        key = keys.counter_key(condition.per.value, subject_value, seconds, ctx.at)
        item = counters.setdefault(
            key,
            {"ttl": keys.counter_ttl(ctx.at, seconds), "adds": {}, "members": {}, "bounds": [], "rules": []},
        )
        item["rules"].append(position)
        attribute = _attribute(condition)
        if condition.measure == "distinct":
            # Only an asserted rule adds its value: its bound keeps the set at most `threshold` values.
            # A decided or unreached rule's set is left as it is (adding would grow it without bound).
            if asserted:
                digest = keys.member(ctx.value(condition.of))
                item["members"][attribute] = digest
                item["bounds"].append(
                    Bound(position, "distinct", attribute, condition.threshold, member=digest)
                )
            continue
        step = 1 if condition.measure == "count" else ctx.amount
        item["adds"][attribute] = step
        if asserted:
            amount = ctx.amount if condition.measure == "amount" else 0
            item["bounds"].append(Bound(position, condition.measure, attribute, condition.threshold, amount))
    guards: list[Guard] = [
        EntryCheck(pk, sk, list_name, ctx.at, tuple(rules)) for (pk, sk), (list_name, rules) in checks.items()
    ]
    guards += [
        CounterUpdate(
            pk,
            sk,
            item["ttl"],
            tuple(sorted(item["adds"].items())),
            tuple(sorted(item["members"].items())),
            tuple(item["bounds"]),
            tuple(item["rules"]),
        )
        for (pk, sk), item in counters.items()
        if item["adds"] or item["members"]
    ]
    decision = Decision(Action.ALLOW, rule_set.version)
    if first_match is not None:
        decision = decided_by(rule_set, first_match)
    return Plan(tuple(guards), decision, first_match, tuple(("risk", i) for i in range(len(guards))))


def decided_by(rule_set: RuleSet, position: int) -> Decision:
    rule: Rule = rule_set.rules[position]
    return Decision(rule.action, rule_set.version, rule.rule_id, rule.reason, position)


def holds(bound: Bound, image: Mapping[str, Any] | None) -> bool:
    """Whether the bound's rule holds (matches) given its counter item as it was (ALL_OLD; None: absent)."""
    image = image or {}
    if bound.measure == "count":
        return int(image.get(bound.attribute, 0)) >= bound.threshold
    if bound.measure == "amount":
        return int(image.get(bound.attribute, 0)) + bound.amount > bound.threshold
    seen = image.get(bound.attribute) or set()
    return bound.member not in seen and len(seen) >= bound.threshold


def entry_live(image: Mapping[str, Any] | None, now: int) -> bool:
    """A list entry blocks (or allows) while it exists and has not expired."""
    if not image:
        return False
    expires_at = image.get("expires_at")
    return expires_at is None or int(expires_at) > now


@dataclass(frozen=True)
class Retry:
    """Commit again with `first_match` deciding (a REVIEW / ALLOW rule), or with the same plan when the
    images show no rule holding (the items changed between the condition and the read of ALL_OLD)."""

    first_match: int | None


def resolve(
    rule_set: RuleSet, attempted: Plan, failed: Mapping[int, Mapping[str, Any] | None]
) -> Decision | Retry:
    """What a cancellation means. `failed`: guard index → its item as it was (ALL_OLD), for each guard
    whose condition failed (Transaction.position of the tag ("risk", i) gives the index). The first rule
    in order that the images show holding decides; a DENY is final, anything else is retried."""
    matched: list[int] = []
    for index, image in failed.items():
        guard = attempted.guards[index]
        if isinstance(guard, EntryCheck):
            if entry_live(image, guard.now):
                matched += guard.rules
        else:
            matched += [b.rule for b in guard.bounds if holds(b, image)]
    if not matched:
        return Retry(attempted.first_match)
    first = min(matched)
    decision = decided_by(rule_set, first)
    return decision if decision.action is Action.DENY else Retry(first)
