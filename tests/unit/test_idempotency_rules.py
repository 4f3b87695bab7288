import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.errors import IdempotencyKeyReused, IdempotencyRequestInFlight, InvalidField
from coupons.domain.idempotency import Replay, check_key, fingerprint, on_existing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_key_order_does_not_change_the_fingerprint(body):
    reordered = dict(reversed(list(body.items())))
    assert fingerprint("POST", "/v1/x", body) == fingerprint("POST", "/v1/x", reordered)


def test_another_body_path_or_method_is_another_request():
    base = fingerprint("POST", "/v1/campaigns", {"a": 1})
    assert base != fingerprint("POST", "/v1/campaigns", {"a": 2})
    assert base != fingerprint("POST", "/v1/api-keys", {"a": 1})
    assert base != fingerprint("PUT", "/v1/campaigns", {"a": 1})


def test_a_completed_record_replays_its_answer():
    record = {"fingerprint": "f", "status": "COMPLETED", "response_status": 201, "response_body": {"id": 1}}
    assert on_existing(record, "f") == Replay(201, {"id": 1})


def test_another_request_under_the_same_key_is_refused():
    with pytest.raises(IdempotencyKeyReused):
        on_existing({"fingerprint": "f", "status": "COMPLETED"}, "g")


def test_the_same_request_still_running_is_a_conflict():
    with pytest.raises(IdempotencyRequestInFlight):
        on_existing({"fingerprint": "f", "status": "IN_PROGRESS"}, "f")


@pytest.mark.parametrize("bad", ["", "has space", "é", "x" * 256])
def test_a_malformed_key_is_refused_naming_the_header(bad):
    with pytest.raises(InvalidField) as refused:
        check_key(bad)
    assert refused.value.field == "Idempotency-Key"
