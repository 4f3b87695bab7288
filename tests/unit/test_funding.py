"""Funding rules: shares sum to 10,000, overrides are specific first, versions apply by time."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from coupons.domain.errors import InvalidField
from coupons.domain.funding import FundingRuleNotFound, RuleTerms, check_version, shares_for, version_in_force

SHARES = {"PLATFORM": 5000, "BRAND": 3000, "MERCHANT": 2000}


def refused_field(body):
    try:
        check_version(RuleTerms.model_validate({"name": "r", **body}))
    except ValidationError as error:
        return ".".join(str(p) for p in error.errors()[0]["loc"])
    except InvalidField as error:
        return error.field
    raise AssertionError("accepted")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"shares": {**SHARES, "MERCHANT": 1999}}, "shares"),
        ({"shares": {**SHARES, "MERCHANT": -1}}, "shares.MERCHANT"),
        ({"shares": {**SHARES, "BANK": 0}}, "shares.BANK"),
        ({"shares": {"PLATFORM": 10000, "BRAND": 0}}, "shares.MERCHANT"),
        ({"shares": SHARES, "merchant_overrides": {"m-1": {**SHARES, "BRAND": 1}}}, "merchant_overrides.m-1"),
        (
            {
                "shares": SHARES,
                "windows": [
                    {
                        "starts_at": "2026-12-01T00:00:00Z",
                        "ends_at": "2026-12-10T00:00:00Z",
                        "shares": SHARES,
                    },
                    {
                        "starts_at": "2026-12-05T00:00:00Z",
                        "ends_at": "2026-12-20T00:00:00Z",
                        "shares": SHARES,
                    },
                ],
            },
            "windows.1.starts_at",
        ),
        (
            {
                "shares": SHARES,
                "windows": [
                    {"starts_at": "2026-12-10T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z", "shares": SHARES}
                ],
            },
            "windows.0.ends_at",
        ),
    ],
)
def test_an_invalid_rule_is_refused_naming_the_field(body, field):
    assert refused_field(body) == field


def test_a_merchant_override_beats_a_window_which_beats_the_default():
    version = {
        "shares": SHARES,
        "merchant_overrides": {"m-vip": {"PLATFORM": 10000, "BRAND": 0, "MERCHANT": 0}},
        "windows": [
            {
                "starts_at": "2026-12-01T00:00:00Z",
                "ends_at": "2026-12-02T00:00:00Z",
                "shares": {"PLATFORM": 0, "BRAND": 10000, "MERCHANT": 0},
            }
        ],
    }
    inside = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert shares_for(version, merchant_id="m-vip", at=inside)[1] == "merchant:m-vip"
    assert shares_for(version, merchant_id="m-1", at=inside)[0].BRAND == 10000
    assert shares_for(version, merchant_id="m-1", at=datetime(2026, 12, 3, tzinfo=UTC))[1] == "default"


def test_the_version_in_force_at_the_redemption_time_applies():
    versions = [
        {"version": 1, "effective_from": "2026-01-01T00:00:00Z"},
        {"version": 2, "effective_from": "2026-06-01T00:00:00Z"},
    ]
    assert version_in_force(versions, datetime(2026, 3, 1, tzinfo=UTC))["version"] == 1
    assert version_in_force(versions, datetime(2026, 7, 1, tzinfo=UTC))["version"] == 2
    with pytest.raises(FundingRuleNotFound):
        version_in_force(versions, datetime(2025, 1, 1, tzinfo=UTC))
