"""Risk control around the checkout: the lists and rules an admin keeps, and the gate a redemption
passes through (its rules as guards inside its one transaction; docs/risk.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from coupons.data.risk import RiskStore, VersionTaken
from coupons.domain.coupons import iso
from coupons.domain.errors import Contention, InvalidField, NotFound
from coupons.domain.ids import new_id
from coupons.domain.risk import holds, keys
from coupons.domain.risk.errors import RiskDenied
from coupons.domain.risk.plan import Context, Decision, Plan, plan, resolve
from coupons.domain.risk.rules import EMPTY, LIST_NAME, Event, RuleSet, RuleSetTerms
from coupons.domain.times import parse

# A container keeps the rule set this long: a redemption stays ONE request (no read of the rules);
# a new version reaches every container within this (the one that stored it at once).
RULES_CACHE_SECONDS = 10


class ListEntryNotFound(NotFound):
    code = "risk_list_entry_not_found"
    title = "No such entry on this list"


@dataclass(frozen=True)
class Subjects:
    """Who is behind a request besides the coupon: the end user's device and address (the till's or
    app's word), the caller's own address (API Gateway's), the user when known."""

    device_id: str | None = None
    client_ip: str | None = None
    caller_ip: str | None = None
    user_id: str | None = None
    api_key_id: str | None = None  # the caller's key: its misses are counted (code guessing)


def caller_ip(source_ip: str | None) -> str | None:
    """API Gateway's source address, normalized; None when it gives none a list could hold."""
    if not source_ip:
        return None
    try:
        return keys.normalize_ip(source_ip, field="sourceIp")
    except InvalidField:
        return None


# -- lists and rules (the admin API) ---------------------------------------------------------------


def list_value(list_name: str, value: str) -> str:
    """The value as its list keeps it: an address in one spelling."""
    if not LIST_NAME.match(list_name):
        raise InvalidField("a list is block- or allow- and user, device, ip, merchant or store", field="list")
    return keys.normalize_ip(value, field="value") if list_name.endswith("-ip") else value


def put_entry(
    store: RiskStore,
    list_name: str,
    value: str,
    *,
    reason: str,
    expires_at: datetime | None,
    by: str,
    now: float,
) -> dict[str, Any]:
    value = list_value(list_name, value)
    expiry = None
    if expires_at is not None:
        expiry = int(expires_at.timestamp())
        if expiry <= int(now):
            raise InvalidField("an entry's expiry is in the future", field="expires_at")
    record = store.put_entry(
        list_name, value, reason=reason, expires_at=expiry, by=by, at=iso(datetime.fromtimestamp(now, UTC))
    )
    return entry_view(record)


def entry_view(record: dict[str, Any]) -> dict[str, Any]:
    view = {k: record[k] for k in ("list_name", "value", "reason", "created_at", "created_by") if k in record}
    view["list"] = view.pop("list_name")
    if record.get("expires_at") is not None:
        view["expires_at"] = iso(datetime.fromtimestamp(record["expires_at"], UTC))
    return view


def delete_entry(store: RiskStore, list_name: str, value: str) -> None:
    if not store.delete_entry(list_name, list_value(list_name, value)):
        raise ListEntryNotFound(field="value")


class RuleSets:
    """The tenant's rule set, cached per container (RULES_CACHE_SECONDS), and its next versions."""

    def __init__(self, store: RiskStore, *, clock: Callable[[], float] = time.time):
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, RuleSet] | None = None

    def current(self) -> RuleSet:
        now = self._clock()
        cached = self._cached
        if cached is not None and now - cached[0] < RULES_CACHE_SECONDS:
            return cached[1]
        found = self._store.latest_rules() or EMPTY
        with self._lock:
            self._cached = (now, found)
        return found

    def put(self, terms: RuleSetTerms, *, by: str) -> RuleSet:
        for _ in range(5):
            latest = self._store.latest_rules()
            version = 1 if latest is None else latest.version + 1
            try:
                stored = self._store.put_rules(
                    terms, version=version, by=by, at=iso(datetime.fromtimestamp(self._clock(), UTC))
                )
            except VersionTaken:
                continue  # another admin's set got this version: ours is the next
            with self._lock:
                self._cached = (self._clock(), stored)
            return stored
        raise Contention(field="rules")

    def record(self, ctx: Context, decision: Decision, *, source_id: str | None) -> None:
        """Records a rule's decision (none when no rule matched: the ordinary redemption). Recording is
        after the fact: a failure to record is logged, never the redemption's failure."""
        if decision.rule_id is None:
            return
        record = holds.decision_record(ctx, decision, decision_id=new_id("rsk"), source_id=source_id)
        try:
            self._store.record_decision(record)
        except Exception:  # noqa: BLE001 — the till's answer does not wait on the audit copy
            from aws_lambda_powertools import Logger

            Logger().exception("risk decision not recorded", extra={"decision": record})


SUBJECT = r"^((user|device|ip|caller_ip|merchant|coupon|brand|campaign|redemption):.{1,200}|platform)$"


def decisions(store: RiskStore, subject: str, *, limit: int, cursor: str | None) -> tuple[list, str | None]:
    name, _, value = subject.partition(":")
    if name in ("ip", "caller_ip"):
        subject = f"{name}:{keys.normalize_ip(value, field='subject')}"
    return store.decisions(subject, limit=limit, cursor=cursor)


def rule_set_view(rule_set: RuleSet) -> dict[str, Any]:
    return rule_set.model_dump(mode="json")


# -- the gate a redemption passes ------------------------------------------------------------------


class Attempt:
    """One redemption's risk evaluation across its commits: the plan of each, and what a cancellation
    of its guards means (docs/risk.md "The cancellation"). Each retry moves the deciding rule strictly
    earlier, so at most len(rules) + 1 commits decide; past twice that the redemption is a 409."""

    def __init__(self, rule_set: RuleSet, ctx: Context, record: Callable[..., None] | None = None):
        self.rule_set = rule_set
        self.ctx = ctx
        self._record = record or (lambda *_, **__: None)  # RuleSets.record: a rule's decision is kept
        self.first_match: int | None = None
        self.current: Plan | None = None
        self._retries = 0

    def plan(self, amount: int) -> Plan:
        self.ctx = replace(self.ctx, amount=amount)
        self.current = plan(self.rule_set, self.ctx, first_match=self.first_match)
        return self.current

    @property
    def decision(self) -> Decision:
        assert self.current is not None
        return self.current.decision

    def committed(self, source_id: str) -> None:
        """The event committed under the current plan: its decision is recorded (if a rule made it)."""
        self._record(self.ctx, self.decision, source_id=source_id)

    def cancelled(self, failed: dict[int, Any]) -> None:
        """Raises RiskDenied for a DENY; otherwise the next plan decides by the rule found (or retries)."""
        assert self.current is not None
        outcome = resolve(self.rule_set, self.current, failed)
        if isinstance(outcome, Decision):
            self._record(self.ctx, outcome, source_id=None)  # denied: nothing else was made
            raise RiskDenied(outcome)
        self.first_match = outcome.first_match
        self._retries += 1
        if self._retries > 2 * (len(self.rule_set.rules) + 1):
            raise Contention(field="code")


def redemption_context(
    subjects: Subjects | None, *, at: int, code: str, campaign_id: str, merchant_id: str, store_id: str,
    currency: str, user_id: str | None,
) -> Context:  # fmt: skip
    subjects = subjects or Subjects()
    return Context(
        event=Event.REDEMPTION,
        at=at,
        user_id=user_id or subjects.user_id,
        campaign_id=campaign_id,
        code=code,
        amount=0,
        currency=currency,
        merchant_id=merchant_id,
        store_id=store_id,
        device_id=subjects.device_id,
        client_ip=subjects.client_ip,
        caller_ip=subjects.caller_ip,
    )


def issuance_context(subjects: Subjects | None, *, at: int, coupon: dict[str, Any]) -> Context:
    """An issuance: its user, campaign and coupon, the face value as its amount (no merchant or store)."""
    subjects = subjects or Subjects()
    return Context(
        event=Event.ISSUANCE,
        at=at,
        user_id=coupon["user_id"],
        campaign_id=coupon["campaign_id"],
        code=coupon["code"],
        amount=coupon.get("face_value", 0),
        currency=coupon.get("currency", ""),
        device_id=subjects.device_id,
        client_ip=subjects.client_ip,
        caller_ip=subjects.caller_ip,
    )


def attempt_for(rule_sets: RuleSets | None, event: Event, ctx: Callable[[], Context]) -> Attempt | None:
    """The evaluation of one event's rules, or None when the tenant has none for it (no guards)."""
    if rule_sets is None:
        return None
    rule_set = rule_sets.current()
    if not rule_set.for_event(event):
        return None
    return Attempt(rule_set, ctx(), rule_sets.record)


__all__ = [
    "Attempt", "ListEntryNotFound", "attempt_for", "issuance_context", "RuleSets", "Subjects", "caller_ip", "delete_entry", "entry_view",
    "list_value", "put_entry", "redemption_context", "rule_set_view", "parse",
]  # fmt: skip
