"""Risk rules as data (风控规则): a tenant's versioned, ordered rule set, strictly validated.

A rule is a condition, an action (DENY / REVIEW / ALLOW) and a reason; the first rule whose condition
holds decides (docs/risk.md). Conditions are list membership (a block or allow list of users, devices,
IPs, merchants or stores) or velocity (a count, an amount or a number of distinct values per subject in
a fixed window). Every refusal is a pydantic error located at the offending field (`rules.2.action`),
so the API answers 400 naming it and writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationInfo, field_validator

from coupons.domain.money import MAX_AMOUNT, Currency


class Action(StrEnum):
    DENY = "DENY"  # refused: 403 risk_denied, nothing written
    REVIEW = "REVIEW"  # succeeds at the till; its postings are held out of settlement until released
    ALLOW = "ALLOW"  # decided: the later rules are not evaluated (an allow list's bypass)


class Event(StrEnum):
    REDEMPTION = "REDEMPTION"
    ISSUANCE = "ISSUANCE"


class Subject(StrEnum):
    """What a velocity counts per, and what a list holds. `ip` is the end user's address (client_ip);
    `caller_ip` the caller's own (API Gateway's source IP); `store` is a merchant's store."""

    USER = "user"
    DEVICE = "device"
    IP = "ip"
    CALLER_IP = "caller_ip"
    MERCHANT = "merchant"
    STORE = "store"
    CAMPAIGN = "campaign"
    COUPON = "coupon"


# What each event knows: an issuance has no merchant or store (and no till), so a rule on them there
# could never match and is refused rather than silently inert.
KNOWN = {
    Event.REDEMPTION: frozenset(Subject),
    Event.ISSUANCE: frozenset(Subject) - {Subject.MERCHANT, Subject.STORE},
}
LISTED = (Subject.USER, Subject.DEVICE, Subject.IP, Subject.MERCHANT, Subject.STORE)
DISTINCT_OF = (Subject.USER, Subject.DEVICE, Subject.IP, Subject.MERCHANT, Subject.STORE)
LIST_NAME = re.compile(r"^(block|allow)-(user|device|ip|merchant|store)$")

# Window sizes: 1 minute .. 7 days. Longer windows are a report, not a guard at the till.
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}
MAX_WINDOW_SECONDS = 7 * 86_400
# A distinct-values condition keeps the values seen in its window on one counter item (docs/risk.md:
# "distinct"); this bounds that item to a few KB (64-bit digests), so its write stays a few units.
MAX_DISTINCT_THRESHOLD = 100
MAX_COUNT_THRESHOLD = 10**9
MAX_RULES = 200  # the transaction budget (budget.py) is what binds: rules sharing counters cost nothing more

RuleId = Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Reason = Annotated[StrictStr, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """A fixed window aligned on the epoch (UTC): `size` × `unit`, e.g. 10 minutes, 1 hour, 1 day."""

    unit: Literal["minute", "hour", "day"]
    size: Annotated[StrictInt, Field(ge=1)] = 1

    @field_validator("size")
    @classmethod
    def _at_most_a_week(cls, size: int, info: ValidationInfo) -> int:
        unit = info.data.get("unit")
        if unit is not None and size * UNIT_SECONDS[unit] > MAX_WINDOW_SECONDS:
            raise ValueError(
                f"a window is at most 7 days ({MAX_WINDOW_SECONDS // UNIT_SECONDS[unit]} {unit}s)"
            )
        return size

    @property
    def seconds(self) -> int:
        return self.size * UNIT_SECONDS[self.unit]


class ListCondition(_Strict):
    """Holds when the event's subject is on the list (an entry that has not expired). An `ip` list is
    checked against both the end user's and the caller's address."""

    type: Literal["list"]
    list: Annotated[StrictStr, Field(pattern=LIST_NAME.pattern)]

    @property
    def blocks(self) -> bool:
        return self.list.startswith("block-")

    @property
    def subject(self) -> Subject:
        return Subject(self.list.split("-", 1)[1])


class VelocityCondition(_Strict):
    """Holds when this event would take the measure over `threshold` in the current window:
    count: more than `threshold` events; amount: more than `threshold` minor units of `currency`
    (the discount or gift-card take; the face value at issuance); distinct: more than `threshold`
    different `of` values (users per device: coupon farming)."""

    type: Literal["velocity"]
    per: Subject
    measure: Literal["count", "amount", "distinct"]
    # Validated when omitted too: a distinct measure without `of`, an amount without a currency.
    of: Subject | None = Field(default=None, validate_default=True)
    currency: Currency | None = Field(default=None, validate_default=True)
    window: Window
    threshold: Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT)]

    @field_validator("of")
    @classmethod
    def _of_for_distinct(cls, of: Subject | None, info: ValidationInfo) -> Subject | None:
        measure, per = info.data.get("measure"), info.data.get("per")
        if measure == "distinct":
            if of is None:
                raise ValueError("a distinct measure names what it counts (of: user, device, ...)")
            if of not in DISTINCT_OF:
                raise ValueError(f"distinct values of one of {[s.value for s in DISTINCT_OF]}")
            if of == per:
                raise ValueError("distinct values of the subject itself are always 1")
        elif of is not None:
            raise ValueError("only a distinct measure takes `of`")
        return of

    @field_validator("currency")
    @classmethod
    def _currency_for_amount(cls, currency: str | None, info: ValidationInfo) -> str | None:
        measure = info.data.get("measure")
        if measure == "amount" and currency is None:
            raise ValueError("an amount is counted in one currency: name it")
        if measure != "amount" and currency is not None:
            raise ValueError("only an amount measure takes a currency")
        return currency

    @field_validator("threshold")
    @classmethod
    def _threshold_in_range(cls, threshold: int, info: ValidationInfo) -> int:
        measure = info.data.get("measure")
        if measure == "distinct" and threshold > MAX_DISTINCT_THRESHOLD:
            raise ValueError(f"a distinct threshold is at most {MAX_DISTINCT_THRESHOLD}")
        if measure == "count" and threshold > MAX_COUNT_THRESHOLD:
            raise ValueError(f"a count threshold is at most {MAX_COUNT_THRESHOLD}")
        return threshold


Condition = Annotated[ListCondition | VelocityCondition, Field(discriminator="type")]


class Rule(_Strict):
    rule_id: RuleId
    applies_to: Event = Event.REDEMPTION
    condition: Condition
    action: Action
    reason: Reason

    @field_validator("condition")
    @classmethod
    def _known_to_the_event(cls, condition: ListCondition | VelocityCondition, info: ValidationInfo):
        event = info.data.get("applies_to")
        if event is None:
            return condition
        named = [condition.subject] if isinstance(condition, ListCondition) else [condition.per, condition.of]
        for subject in named:
            if subject is not None and subject not in KNOWN[event]:
                raise ValueError(f"an {event.value.lower()} has no {subject.value}")
        return condition

    @field_validator("action")
    @classmethod
    def _action_fits_the_list(cls, action: Action, info: ValidationInfo) -> Action:
        # A block list that allows, or an allow list that denies, is a mistake, not a policy.
        condition = info.data.get("condition")
        if isinstance(condition, ListCondition):
            if condition.blocks and action is Action.ALLOW:
                raise ValueError("a block list's rule denies or reviews (DENY or REVIEW)")
            if not condition.blocks and action is not Action.ALLOW:
                raise ValueError("an allow list's rule allows (ALLOW)")
        return action


class RuleSetTerms(_Strict):
    """What an admin sends (`POST /v1/risk/rules`): the whole ordered set; the store gives it the next
    version. An empty set is valid: it switches the rules off."""

    rules: Annotated[list[Rule], Field(max_length=MAX_RULES)]

    @field_validator("rules")
    @classmethod
    def _unique_and_within_budget(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            if rule.rule_id in seen:
                raise ValueError(f"rule {index}: rule_id {rule.rule_id!r} is used twice")
            seen.add(rule.rule_id)
        refuse_over_budget(rules)
        return rules


class RuleSet(RuleSetTerms):
    """A stored version. Versions start at 1 and only grow; a decision records the version it used."""

    version: Annotated[StrictInt, Field(ge=1)]

    def for_event(self, event: Event) -> list[tuple[int, Rule]]:
        """(position, rule) of the rules that apply to `event`, in order."""
        return [(i, r) for i, r in enumerate(self.rules) if r.applies_to is event]


# --- the transaction budget ------------------------------------------------------------------
# What a rule set costs in transaction items, and the refusal of one that cannot fit.
#
# TransactWriteItems takes at most 100 actions, and no two on one item. A redemption's own actions are at
# most 6 (data/redemptions.py: the campaign shard check, the coupon, the redemption, the Idempotency-Key
# record, the QR nonce, the history event); an issuance's 5 (data/coupons.py: the shard, the coupon, the
# holding, the ISSUED history event, the Idempotency-Key completion). Code guessing reserves 3 ConditionChecks
# on a redemption (the API key's, the end user's IP's and device's miss counters: risk/guessing.py).
# What is left is the rules' budget: 91 items for a redemption, 95 for an issuance.
#
# A rule set's cost is an upper bound over every context: one ConditionCheck per list (an ip list two:
# the end user's and the caller's address), one counter update per (subject, window size) — rules with the
# same subject and window share one counter item, whatever they measure. A context can only cost less
# (a subject not given, two addresses equal).

TRANSACTION_LIMIT = 100
OWN_ITEMS = {Event.REDEMPTION: 6, Event.ISSUANCE: 5}
RESERVED = {Event.REDEMPTION: 3, Event.ISSUANCE: 0}


def budget(event: Event) -> int:
    return TRANSACTION_LIMIT - OWN_ITEMS[event] - RESERVED[event]


def cost(rules: Iterable[Rule], event: Event) -> int:
    """The most transaction items the rules applying to `event` add to it."""
    lists: set[str] = set()
    counters: set[tuple[str, int]] = set()
    for rule in rules:
        if rule.applies_to is not event:
            continue
        condition = rule.condition
        if isinstance(condition, ListCondition):
            lists.add(condition.list)
        else:
            counters.add((condition.per.value, condition.window.seconds))
    addresses = sum(2 if name.endswith(f"-{Subject.IP.value}") else 1 for name in lists)
    return addresses + len(counters)


def refuse_over_budget(rules: list[Rule]) -> None:
    """ValueError (a 400 on `rules`) when some event's rules cannot fit in its one transaction."""
    for event in Event:
        needed = cost(rules, event)
        if needed > budget(event):
            raise ValueError(
                f"the {event.value.lower()} rules need up to {needed} transaction items, over the "
                f"{budget(event)} a {event.value.lower()} has left of DynamoDB's {TRANSACTION_LIMIT}: "
                "share counters (same subject and window) or lists"
            )


EMPTY = RuleSet(version=1, rules=[])
