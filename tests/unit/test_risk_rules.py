"""Risk rules as data: the issue's examples validate; bad fields, windows and actions are refused at the
field that is wrong (the API maps these to 400 naming it)."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from coupons.domain.risk import rules as budget
from coupons.domain.risk.examples import (
    ALLOWED_USER,
    BLOCKED_DEVICE,
    BRUSHING,
    EXAMPLES,
    FARMING,
    ISSUANCE_FARMING,
    rule_set,
)
from coupons.domain.risk.rules import Action, Event, RuleSetTerms, Subject, VelocityCondition


def refused(rules: list[dict]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        RuleSetTerms.model_validate({"rules": rules})
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]


def changed(rule: dict, path: str, value) -> dict:
    copied = copy.deepcopy(rule)
    *parents, last = path.split(".")
    target = copied
    for name in parents:
        target = target[name]
    if value is None:
        target.pop(last)
    else:
        target[last] = value
    return copied


def test_the_four_examples_of_the_issue_are_expressible_in_one_rule_set():
    rules = rule_set(*EXAMPLES, BLOCKED_DEVICE, ALLOWED_USER, version=3)

    assert rules.version == 3
    farming = rules.rules[0].condition
    assert isinstance(farming, VelocityCondition)
    assert (farming.per, farming.measure, farming.of, farming.window.seconds, farming.threshold) == (
        Subject.DEVICE,
        "distinct",
        Subject.USER,
        3600,
        3,
    )
    assert rules.rules[1].condition.window.seconds == 600
    assert rules.rules[2].condition.measure == "count"
    assert rules.rules[3].applies_to is Event.ISSUANCE
    assert [r.rule_id for _, r in rules.for_event(Event.ISSUANCE)] == ["claim-farm"]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("action", "BLOCK", "rules.0.action"),
        ("reason", "", "rules.0.reason"),
        ("rule_id", "Has Spaces", "rules.0.rule_id"),
        ("applies_to", "REFUND", "rules.0.applies_to"),
        ("condition.type", "geo", "rules.0.condition"),
        ("condition.window.unit", "week", "rules.0.condition.velocity.window.unit"),
        ("condition.window.size", 0, "rules.0.condition.velocity.window.size"),
        ("condition.window.size", 8, "rules.0.condition.velocity.window.size"),
        ("condition.per", "planet", "rules.0.condition.velocity.per"),
        ("condition.measure", "median", "rules.0.condition.velocity.measure"),
        ("condition.threshold", 0, "rules.0.condition.velocity.threshold"),
        ("condition.threshold", 101, "rules.0.condition.velocity.threshold"),
        ("condition.of", None, "rules.0.condition.velocity.of"),
        ("condition.of", "device", "rules.0.condition.velocity.of"),
        ("condition.colour", "red", "rules.0.condition.velocity.colour"),
        ("surprise", 1, "rules.0.surprise"),
    ],
)
def test_a_bad_field_window_or_action_is_refused_naming_the_field(path, value, field):
    errors = refused(
        [
            changed(
                {**FARMING, "condition": {**FARMING["condition"], "window": {"unit": "day", "size": 1}}},
                path,
                value,
            )
        ]
    )

    assert field in [where for where, _ in errors], errors


def test_an_amount_needs_a_currency_and_only_an_amount_takes_one():
    amount = {**BRUSHING, "condition": {**BRUSHING["condition"], "measure": "amount", "threshold": 100_000}}
    assert refused([amount])[0][0] == "rules.0.condition.velocity.currency"
    count_with_currency = {**BRUSHING, "condition": {**BRUSHING["condition"], "currency": "CNY"}}
    assert refused([count_with_currency])[0][0] == "rules.0.condition.velocity.currency"
    rule_set({**amount, "condition": {**amount["condition"], "currency": "CNY"}})  # accepted


def test_a_block_list_never_allows_and_an_allow_list_never_denies():
    assert refused([{**BLOCKED_DEVICE, "action": "ALLOW"}])[0][0] == "rules.0.action"
    assert refused([{**ALLOWED_USER, "action": "DENY"}])[0][0] == "rules.0.action"
    assert rule_set({**BLOCKED_DEVICE, "action": "REVIEW"}).rules[0].action is Action.REVIEW


def test_an_issuance_rule_on_a_merchant_or_store_is_refused_it_could_never_match():
    on_merchant = {**ISSUANCE_FARMING, "condition": {**BRUSHING["condition"]}}
    assert refused([on_merchant])[0][0] == "rules.0.condition"
    store_list = {
        **BLOCKED_DEVICE,
        "applies_to": "ISSUANCE",
        "condition": {"type": "list", "list": "block-store"},
    }
    assert refused([store_list])[0][0] == "rules.0.condition"


def test_a_list_name_outside_the_ten_lists_is_refused():
    assert refused([{**BLOCKED_DEVICE, "condition": {"type": "list", "list": "block-planet"}}])[0][0] == (
        "rules.0.condition.list.list"
    )


def test_a_rule_id_used_twice_is_refused_on_rules():
    errors = refused([FARMING, FARMING])
    assert errors[0][0] == "rules" and "used twice" in errors[0][1]


def test_a_rule_set_whose_guards_cannot_fit_the_one_transaction_is_refused():
    """91 items are left to a redemption's rules: 91 counters fit, 92 do not."""

    def counter(i: int) -> dict:
        return {
            "rule_id": f"r{i}",
            "condition": {
                "type": "velocity",
                "per": "user",
                "measure": "count",
                "window": {"unit": "minute", "size": i + 1},
                "threshold": 5,
            },
            "action": "DENY",
            "reason": "x",
        }

    assert budget.budget(Event.REDEMPTION) == 91
    rule_set(*(counter(i) for i in range(91)))
    errors = refused([counter(i) for i in range(92)])
    assert errors[0][0] == "rules" and "92 transaction items" in errors[0][1]


def test_rules_sharing_a_subject_and_window_share_one_counter_item():
    amount = {
        **BRUSHING,
        "rule_id": "merchant-amount",
        "condition": {**BRUSHING["condition"], "measure": "amount", "currency": "CNY", "threshold": 10**6},
    }
    rules = rule_set(
        BRUSHING,
        amount,
        BLOCKED_DEVICE,
        {**BLOCKED_DEVICE, "rule_id": "ip", "condition": {"type": "list", "list": "block-ip"}},
    )
    # one merchant counter for both, one device list check, two ip checks (client and caller address)
    assert budget.cost(rules.rules, Event.REDEMPTION) == 4
    assert budget.cost(rules.rules, Event.ISSUANCE) == 0
