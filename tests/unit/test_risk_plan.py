"""The guards a redemption adds to its one transaction, the cancellation mapped back to the rule, and
properties of the counters conditioned as the store conditions them (coupons.domain.risk.memory)."""

from __future__ import annotations

from collections import Counter, defaultdict

from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.risk import keys
from coupons.domain.risk.examples import (
    ALLOWED_USER,
    BLOCKED_DEVICE,
    BRUSHING,
    FARMING,
    STORE_HOPPING,
    rule_set,
)
from coupons.domain.risk.memory import MemoryTable, evaluate
from coupons.domain.risk.plan import Context, CounterUpdate, EntryCheck, plan
from coupons.domain.risk.rules import Action, Event

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, on every window's boundary


def ctx(**overrides) -> Context:
    values = dict(
        event=Event.REDEMPTION,
        at=T0 + 10,
        user_id="u-1",
        campaign_id="cmp-1",
        code="C0DE",
        amount=500,
        currency="CNY",
        merchant_id="m-1",
        store_id="s-1",
        device_id="d-1",
        client_ip="10.0.0.1",
        caller_ip="192.0.2.7",
    )
    values.update(overrides)
    return Context(**values)


def velocity(
    rule_id: str, per: str, measure: str, threshold: int, *, unit="minute", size=1, action="DENY", **more
):
    condition = {
        "type": "velocity",
        "per": per,
        "measure": measure,
        "threshold": threshold,
        "window": {"unit": unit, "size": size},
        **more,
    }
    return {"rule_id": rule_id, "condition": condition, "action": action, "reason": f"{rule_id} exceeded"}


def test_no_rules_add_no_guard_and_allow():
    planned = plan(rule_set(), ctx())
    assert planned.guards == () and planned.decision.action is Action.ALLOW


def test_a_list_rule_is_one_condition_check_that_the_entry_is_absent_or_expired():
    planned = plan(rule_set(BLOCKED_DEVICE), ctx())
    (guard,) = planned.guards
    assert isinstance(guard, EntryCheck)
    assert (guard.pk, guard.sk, guard.now, guard.rules) == (
        "RISKLIST#block-device#d-1",
        "ENTRY",
        T0 + 10,
        (0,),
    )


def test_an_ip_list_checks_the_end_users_and_the_callers_address():
    ip_rule = {**BLOCKED_DEVICE, "rule_id": "ip", "condition": {"type": "list", "list": "block-ip"}}
    assert [g.pk for g in plan(rule_set(ip_rule), ctx()).guards] == [
        "RISKLIST#block-ip#10.0.0.1",
        "RISKLIST#block-ip#192.0.2.7",
    ]
    assert len(plan(rule_set(ip_rule), ctx(caller_ip="10.0.0.1")).guards) == 1  # one item, one action


def test_a_velocity_rule_is_a_counter_update_keyed_by_subject_and_window_bucket_with_its_ttl():
    (guard,) = plan(rule_set(BRUSHING), ctx()).guards
    assert isinstance(guard, CounterUpdate)
    assert (guard.pk, guard.sk) == ("RISKCTR#merchant#m-1", f"W60#{(T0 + 10) // 60}")
    assert guard.adds == (("n", 1),) and guard.members == ()
    assert guard.expires_at == T0 + 60 + keys.TTL_MARGIN_SECONDS
    (bound,) = guard.bounds
    assert (bound.measure, bound.attribute, bound.threshold) == ("count", "n", 20)


def test_rules_on_one_subject_and_window_share_one_item_with_all_their_bounds():
    amount = velocity("m-amount", "merchant", "amount", 10_000, currency="CNY")
    (guard,) = plan(rule_set(BRUSHING, amount), ctx()).guards
    assert guard.adds == (("amt_CNY", 500), ("n", 1))
    assert [(b.rule, b.measure, b.room) for b in guard.bounds] == [(0, "count", 20), (1, "amount", 9_500)]


def test_a_distinct_rule_adds_a_digest_of_the_value_to_the_set_of_its_window():
    (guard,) = plan(rule_set(FARMING), ctx()).guards
    assert guard.members == (("d_user", keys.member("u-1")),) and guard.adds == ()
    assert guard.sk == f"W3600#{(T0 + 10) // 3600}"


def test_a_subject_the_request_did_not_give_matches_no_rule_and_costs_no_item():
    assert plan(rule_set(FARMING, BLOCKED_DEVICE), ctx(device_id=None)).guards == ()
    assert plan(rule_set(velocity("eur", "user", "amount", 5, currency="EUR")), ctx()).guards == ()


def test_a_blocked_device_is_denied_with_the_rule_id_version_and_reason_and_nothing_is_counted():
    table = MemoryTable()
    table.put_entry("block-device", "d-1")
    rules = rule_set(BLOCKED_DEVICE, BRUSHING, version=7)

    result = evaluate(rules, ctx(), table)

    assert result.decision.action is Action.DENY and result.committed is None
    assert result.decision.problem_extra() == {
        "rule_id": "blocked-device",
        "rule_version": 7,
        "reason": "device on the block list",
    }
    assert not any(k[0].startswith("RISKCTR#") for k in table.items)  # a denied redemption wrote nothing


def test_an_expired_entry_stops_blocking():
    table = MemoryTable()
    table.put_entry("block-device", "d-1", expires_at=T0 + 10)
    assert evaluate(rule_set(BLOCKED_DEVICE), ctx(at=T0 + 9), table).decision.action is Action.DENY
    assert evaluate(rule_set(BLOCKED_DEVICE), ctx(at=T0 + 10), table).decision.action is Action.ALLOW


def test_an_allow_listed_user_is_decided_by_the_allow_rule_and_later_rules_do_not_gate_but_still_count():
    table = MemoryTable()
    table.put_entry("allow-user", "u-1")
    rules = rule_set(ALLOWED_USER, velocity("one", "user", "count", 1))

    decisions = [evaluate(rules, ctx(), table) for _ in range(3)]

    assert [d.decision.rule_id for d in decisions] == ["trusted-user"] * 3
    assert [d.attempts for d in decisions] == [2, 2, 2]  # the allow list's check fails, then commits
    assert table.items[keys.counter_key("user", "u-1", 60, T0 + 10)]["n"] == 3


def test_a_review_rule_lets_the_redemption_through_marked_with_the_rule_and_an_earlier_deny_still_applies():
    table = MemoryTable()
    rules = rule_set(
        velocity("deny-10", "user", "count", 3), velocity("review-2", "user", "count", 1, action="REVIEW")
    )

    actions = [evaluate(rules, ctx(), table).decision for _ in range(5)]

    assert [(a.action, a.rule_id) for a in actions] == [
        (Action.ALLOW, None),
        (Action.REVIEW, "review-2"),
        (Action.REVIEW, "review-2"),
        (Action.DENY, "deny-10"),
        (Action.DENY, "deny-10"),
    ]


def test_farming_the_fourth_user_on_a_device_in_an_hour_is_denied_but_a_user_already_counted_is_not():
    table = MemoryTable()
    rules = rule_set(FARMING)
    for user in ("u-1", "u-2", "u-3"):
        assert evaluate(rules, ctx(user_id=user), table).decision.action is Action.ALLOW
    assert evaluate(rules, ctx(user_id="u-4"), table).decision.rule_id == "farm-device"
    assert evaluate(rules, ctx(user_id="u-2", at=T0 + 3599), table).decision.action is Action.ALLOW
    assert (
        evaluate(rules, ctx(user_id="u-4", at=T0 + 3600), table).decision.action is Action.ALLOW
    )  # next hour


def test_a_user_at_a_sixth_store_within_ten_minutes_is_reviewed():
    table = MemoryTable()
    rules = rule_set(STORE_HOPPING)
    actions = [
        evaluate(rules, ctx(store_id=f"s-{i}", at=T0 + 60 * i), table).decision.action for i in range(7)
    ]
    assert actions == [Action.ALLOW] * 5 + [Action.REVIEW] * 2


def test_one_amount_above_an_amount_threshold_is_denied_on_a_fresh_counter():
    table = MemoryTable()
    result = evaluate(
        rule_set(velocity("big", "user", "amount", 400, currency="CNY")), ctx(amount=500), table
    )
    assert result.decision.rule_id == "big" and result.attempts == 1


# --- properties ---------------------------------------------------------------------------------

events = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 4 * 3600), st.integers(1, 900)),
    max_size=80,
)


def _sorted(sequence):
    return sorted(sequence, key=lambda e: e[2])


@given(events, st.integers(1, 6), st.sampled_from([("minute", 1), ("minute", 10), ("hour", 1)]))
def test_a_count_guard_of_limit_n_admits_exactly_min_n_attempts_per_subject_and_window(
    sequence, limit, window
):
    unit, size = window
    rules = rule_set(velocity("cap", "device", "count", limit, unit=unit, size=size))
    table = MemoryTable()
    admitted, attempted = Counter(), Counter()
    for user, device, offset, amount in _sorted(sequence):
        at = T0 + offset
        key = (device, at // (size * {"minute": 60, "hour": 3600}[unit]))
        attempted[key] += 1
        if evaluate(
            rules, ctx(user_id=f"u{user}", device_id=f"d{device}", at=at, amount=amount), table
        ).committed:
            admitted[key] += 1
    assert all(admitted[k] == min(limit, attempted[k]) for k in attempted)


@given(events, st.integers(1, 3000))
def test_an_amount_guard_never_admits_more_than_its_limit_per_window(sequence, limit):
    rules = rule_set(velocity("budget", "user", "amount", limit, unit="hour", currency="CNY"))
    table = MemoryTable()
    total = defaultdict(int)
    for user, _device, offset, amount in _sorted(sequence):
        at = T0 + offset
        if evaluate(rules, ctx(user_id=f"u{user}", at=at, amount=amount), table).committed:
            total[(user, at // 3600)] += amount
    assert all(v <= limit for v in total.values())


@given(events, st.integers(1, 4))
def test_a_distinct_guard_admits_at_most_n_users_per_device_and_never_refuses_one_already_counted(
    sequence, limit
):
    rules = rule_set(velocity("farm", "device", "distinct", limit, unit="hour", of="user"))
    table = MemoryTable()
    seen = defaultdict(set)
    for user, device, offset, _ in _sorted(sequence):
        at = T0 + offset
        key = (device, at // 3600)
        result = evaluate(rules, ctx(user_id=f"u{user}", device_id=f"d{device}", at=at), table)
        if user in seen[key]:
            assert result.committed is not None
        if result.committed:
            seen[key].add(user)
        assert len(seen[key]) <= limit
    for item in table.items.values():
        assert len(item.get("d_user", ())) <= limit  # the set never outgrows its threshold


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 400)), max_size=20), st.integers(0, 400))
def test_a_list_entry_blocks_exactly_until_it_expires(entries, now):
    table = MemoryTable()
    live = set()
    for device, expires_at in entries:
        table.put_entry("block-device", f"d{device}", expires_at=T0 + expires_at)
        live.discard(device)
        if expires_at > now:
            live.add(device)
    for device in range(3):
        decision = evaluate(
            rule_set(BLOCKED_DEVICE), ctx(device_id=f"d{device}", at=T0 + now), table
        ).decision
        assert (decision.action is Action.DENY) == (device in live)


rule_choices = st.sampled_from(
    [
        velocity("c-dev", "device", "count", 2),
        velocity("c-user", "user", "count", 3, action="REVIEW"),
        velocity("a-user", "user", "amount", 1500, currency="CNY", action="REVIEW"),
        velocity("d-dev", "device", "distinct", 2, unit="hour", of="user"),
        velocity("d-user", "user", "distinct", 2, unit="hour", of="device", action="REVIEW"),
        {**ALLOWED_USER},
        {**BLOCKED_DEVICE},
    ]
)


def _reference(rules, history, c: Context, allowed: set[str], blocked: set[str]):
    """First match over the committed history, computed directly: what the guards must agree with."""
    for position, rule in rules.for_event(c.event):
        cond = rule.condition
        if cond.type == "list":
            listed = allowed if cond.list == "allow-user" else blocked
            if c.value(cond.subject) in listed:
                return rule.action, rule.rule_id
            continue
        w = cond.window.seconds
        same = [h for h in history if h[0].value(cond.per) == c.value(cond.per) and h[0].at // w == c.at // w]
        if cond.measure == "count":
            matched = sum(1 for h in same if position in h[1]) >= cond.threshold
        elif cond.measure == "amount":
            matched = sum(h[0].amount for h in same if position in h[1]) + c.amount > cond.threshold
        else:  # a distinct set holds the values of the events that rule evaluated and admitted
            values = {h[0].value(cond.of) for h in same if position in h[2]}
            matched = c.value(cond.of) not in values and len(values) >= cond.threshold
        if matched:
            return rule.action, rule.rule_id
    return Action.ALLOW, None


@given(st.lists(rule_choices, min_size=1, max_size=4, unique_by=lambda r: r["rule_id"]), events)
def test_the_guards_decide_as_first_match_over_the_committed_events_computed_directly(chosen, sequence):
    rules = rule_set(*chosen)
    table = MemoryTable()
    table.put_entry("allow-user", "u0")
    table.put_entry("block-device", "d3")
    history = []  # (context, rules whose counts it added to, rules whose distinct sets it added to)
    for user, device, offset, amount in _sorted(sequence):
        c = ctx(user_id=f"u{user}", device_id=f"d{device}", at=T0 + offset, amount=amount)
        expected = _reference(rules, history, c, {"u0"}, {"d3"})
        result = evaluate(rules, c, table)
        assert (result.decision.action, result.decision.rule_id) == expected
        assert result.attempts <= len(chosen) + 1
        if result.committed:
            counted = {r for g in result.committed.guards if isinstance(g, CounterUpdate) for r in g.rules}
            distinct = {
                b.rule
                for g in result.committed.guards
                if isinstance(g, CounterUpdate)
                for b in g.bounds
                if b.measure == "distinct"
            }
            history.append((c, counted, distinct))
