"""Review holds and party holds as a settlement filter, code-guessing and dynamic-code lockout math, and
the EWMA burst detector."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from coupons.domain.risk import anomaly, guessing, holds, keys
from coupons.domain.risk.errors import RiskDenied
from coupons.domain.risk.plan import Context, Decision
from coupons.domain.risk.rules import Action, Event

T0 = 1_767_225_600


def test_a_review_decision_marks_the_redemption_held_with_its_rule():
    decision = Decision(Action.REVIEW, 4, "store-hopping", "many stores", 1)
    assert holds.review_fields(decision, "rdm_1") == {
        "risk_action": "REVIEW",
        "risk_rule_id": "store-hopping",
        "risk_rule_version": 4,
        "risk_reason": "many stores",
        "review_hold": "review:rdm_1",
    }
    assert holds.review_fields(Decision(Action.ALLOW, 4), "rdm_1") == {}


def test_a_risk_denial_is_a_403_naming_the_rule_version_and_reason():
    error = RiskDenied(Decision(Action.DENY, 2, "farm-device", "coupon farming", 0))
    assert (error.kind.value, error.code) == ("forbidden", "risk_denied")
    assert error.extra == {"rule_id": "farm-device", "rule_version": 2, "reason": "coupon farming"}


def test_review_held_lines_wait_until_released_and_the_others_are_taken():
    lines = [
        {"journal_id": "j1", "amount": 100},
        {"journal_id": "j2", "amount": 50, "review_hold": "review:r2"},
    ]

    before = holds.settleable("merchant:m-1", lines, holds=[], released_reviews=set(), at=T0)
    after = holds.settleable("merchant:m-1", lines, holds=[], released_reviews={"review:r2"}, at=T0)

    assert [line["journal_id"] for line in before.lines] == ["j1"]
    assert before.held[0]["held_because"] == {"review_hold": "review:r2"}
    assert [line["journal_id"] for line in after.lines] == ["j1", "j2"] and after.held == []


def test_a_held_party_waits_from_its_hold_until_its_release_and_its_lines_show_why():
    hold = holds.hold_record(holds.HoldTerms(party="merchant:m-1", reason="chargebacks"), by="admin", at=T0)
    lines = [{"journal_id": "j1", "amount": 100}]

    assert holds.settleable("merchant:m-1", lines, holds=[hold], released_reviews=set(), at=T0 - 1).held == []
    held = holds.settleable("merchant:m-1", lines, holds=[hold], released_reviews=set(), at=T0 + 5)
    assert held.lines == [] and held.held[0]["held_because"]["reason"] == "chargebacks"
    released = holds.release_record(hold, by="finance", at=T0 + 100)
    assert holds.release_record(released, by="other", at=T0 + 200)["released_by"] == "finance"
    assert holds.settleable(
        "merchant:m-1", lines, holds=[released], released_reviews=set(), at=T0 + 100
    ).lines
    assert holds.settleable("merchant:m-2", lines, holds=[hold], released_reviews=set(), at=T0 + 5).lines


def test_a_hold_on_something_that_is_not_a_party_is_refused_naming_the_field():
    with pytest.raises(ValidationError) as caught:
        holds.HoldTerms(party="m-1", reason="x")
    assert caught.value.errors()[0]["loc"] == ("party",)


def test_a_decision_record_is_found_by_each_subject_the_request_gave():
    ctx = Context(Event.REDEMPTION, T0, "u-1", "cmp-1", "C0DE", 500, "CNY", "m-1", "s-1", "d-1", None, None)
    record = holds.decision_record(
        ctx, Decision(Action.DENY, 1, "r", "why", 0), decision_id="dec_1", source_id=None
    )
    assert record["subjects"] == ["user:u-1", "device:d-1", "merchant:m-1", "coupon:C0DE"]


# --- guessing ------------------------------------------------------------------------------------


def test_misses_are_counted_per_api_key_and_per_end_user_ip_and_device_when_given():
    policy = guessing.GuessPolicy(window_seconds=600)
    counters = guessing.guess_counters(
        policy, at=T0 + 30, api_key_id="key-1", client_ip="10.0.0.1", device_id=None
    )
    assert [(c.scope, c.pk, c.sk, c.limit) for c in counters] == [
        ("api_key", "RISKGUESS#api_key#key-1", f"W600#{(T0 + 30) // 600}", 200),
        ("ip", "RISKGUESS#ip#10.0.0.1", f"W600#{(T0 + 30) // 600}", 20),
    ]
    assert counters[0].expires_at == T0 + 600 + keys.TTL_MARGIN_SECONDS


def test_a_caller_over_its_misses_is_answered_429_with_retry_after_the_window_end():
    policy = guessing.GuessPolicy(window_seconds=600, per_ip=3)
    (counter,) = guessing.guess_counters(policy, at=T0, api_key_id="", client_ip="10.0.0.1", device_id=None)
    assert [guessing.over_limit(counter, n) for n in (None, 2, 3)] == [False, False, True]
    error = guessing.refusal(policy, T0 + 590)
    assert (error.kind.value, error.code, error.retry_after) == ("too_many_requests", "too_many_lookups", 10)
    assert error.field is None


@given(st.integers(0, 10**10), st.integers(1, 86_400))
def test_retry_after_is_never_zero_and_never_past_the_window(at, window):
    wait = keys.retry_after(at, window)
    assert 1 <= wait <= window and (at + wait) % window == 0


def test_five_wrong_dynamic_codes_lock_the_coupon_for_the_period():
    policy = guessing.LockoutPolicy(max_failures=5, failure_window=900, lock_seconds=900)
    state = guessing.TotpFailures()
    outcomes = []
    for i in range(5):
        state, now_locked = guessing.on_failure(policy, state, T0 + i)
        outcomes.append(now_locked)
    assert outcomes == [False] * 4 + [True]
    assert guessing.locked(state, T0 + 903) and not guessing.locked(state, T0 + 904)
    assert guessing.lock_refusal(state, T0 + 900).retry_after == 4
    again, _ = guessing.on_failure(policy, state, T0 + 10)
    assert again == state  # trying while locked does not extend the lock


def test_failures_older_than_the_window_are_forgotten():
    policy = guessing.LockoutPolicy()
    state = guessing.TotpFailures()
    for at in (0, 1, 2, 3):
        state, _ = guessing.on_failure(policy, state, T0 + at)
    state, locked = guessing.on_failure(policy, state, T0 + 900)
    assert not locked and state.failures == 1


@given(st.lists(st.integers(0, 5000), max_size=60))
def test_no_more_than_five_failures_count_between_locks(offsets):
    policy = guessing.LockoutPolicy()
    state = guessing.TotpFailures()
    for at in sorted(offsets):
        state, _ = guessing.on_failure(policy, state, T0 + at)
        assert state.failures < policy.max_failures


# --- anomaly -------------------------------------------------------------------------------------


def _poisson(rng: random.Random, lam: float) -> int:
    count, threshold, product = 0, pow(2.718281828459045, -lam), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def test_warm_up_flags_nothing_then_a_burst_of_ten_times_the_rate_is_flagged():
    config = anomaly.DetectorConfig()
    rng = random.Random(7)
    state = anomaly.Baseline()
    flagged = []
    for i in range(200):
        count = _poisson(rng, 4.0) if i != 150 else 40
        state, flags = anomaly.update(config, state, anomaly.Observation(count, count * 500))
        if flags:
            flagged.append((i, flags[0].series))
    assert (150, "rate") in flagged
    assert len(flagged) <= 2  # normal Poisson(4) traffic raises (almost) nothing at z > 4


def test_a_jump_of_the_average_discount_is_flagged():
    config = anomaly.DetectorConfig()
    state = anomaly.Baseline()
    for _ in range(30):
        state, flags = anomaly.update(config, state, anomaly.Observation(5, 5 * 500))
        assert flags == []
    state, flags = anomaly.update(config, state, anomaly.Observation(5, 5 * 2000))
    assert [f.series for f in flags] == ["discount"]


def test_a_flagged_interval_barely_moves_the_baseline():
    config = anomaly.DetectorConfig()
    state = anomaly.Baseline()
    for _ in range(30):
        state, _ = anomaly.update(config, state, anomaly.Observation(4, 0))
    after, flags = anomaly.update(config, state, anomaly.Observation(100, 0))
    assert flags and after.rate.mean < state.rate.mean + 1.0


def test_intervals_include_the_quiet_ones():
    config = anomaly.DetectorConfig(interval_seconds=60)
    found = anomaly.intervals([(0, "m", 5), (61, "m", 5), (250, "n", 1)], config)
    assert [(slot, o.count) for slot, o in found["m"]] == [(0, 1), (1, 1), (2, 0), (3, 0), (4, 0)]
    assert [slot for slot, _ in found["n"]] == [4]
