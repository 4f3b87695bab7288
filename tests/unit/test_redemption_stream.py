"""Which stream records are new redemptions and reversals (coupons.data.redemption_stream): what clearing
posts and the anomaly detector observes — an INSERT, or a redemption hold captured in place (its item's
kind HOLD → REDEMPTION); the Lambda filters and the handlers' own check say the same."""

import pytest

from coupons.data.redemption_stream import CLEARED, OBSERVED, filter_patterns, new_source
from infra.local.streams import record_matches


def record(event, new_kind, old_kind=None):
    images = {"NewImage": {"kind": {"S": new_kind}, "redemption_id": {"S": "hld_x"}}}
    if old_kind is not None:
        images["OldImage"] = {"kind": {"S": old_kind}, "redemption_id": {"S": "hld_x"}}
    return {"eventName": event, "dynamodb": images}


CASES = [
    (record("INSERT", "REDEMPTION"), CLEARED, True),
    (record("INSERT", "REVERSAL"), CLEARED, True),
    (record("MODIFY", "REDEMPTION", "HOLD"), CLEARED, True),  # a hold captured in place
    (record("MODIFY", "REDEMPTION", "REDEMPTION"), CLEARED, False),  # a refund's totals, a cleared mark
    (record("MODIFY", "HOLD", "HOLD"), CLEARED, False),  # a hold voided or released
    (record("INSERT", "HOLD"), CLEARED, False),  # a hold placed: nothing clears
    (record("MODIFY", "REVERSAL", "HOLD"), CLEARED, False),
    (record("REMOVE", "REDEMPTION"), CLEARED, False),
    (record("INSERT", "REDEMPTION"), OBSERVED, True),
    (record("MODIFY", "REDEMPTION", "HOLD"), OBSERVED, True),
    (record("INSERT", "REVERSAL"), OBSERVED, False),
    (record("MODIFY", "REDEMPTION", "REDEMPTION"), OBSERVED, False),
]


@pytest.mark.parametrize(("raw", "kinds", "taken"), CASES)
def test_a_record_is_taken_when_it_inserts_a_source_or_captures_a_hold_in_place(raw, kinds, taken):
    assert (new_source(raw, kinds) is not None) is taken


@pytest.mark.parametrize(("raw", "kinds", "taken"), CASES)
def test_the_lambda_filters_let_through_exactly_what_the_handlers_take(raw, kinds, taken):
    assert any(record_matches(p, raw) for p in filter_patterns(kinds)) is taken


def test_the_source_is_the_new_image():
    assert new_source(record("MODIFY", "REDEMPTION", "HOLD"), CLEARED) == {
        "kind": {"S": "REDEMPTION"},
        "redemption_id": {"S": "hld_x"},
    }
