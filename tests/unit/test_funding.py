"""Funding rules: shares sum to 10,000, overrides are specific first, versions apply by time."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from coupons.domain.errors import InvalidField
from coupons.domain.funding import (
    FundingRuleNotFound,
    RuleTerms,
    check_version,
    is_approved,
    next_whole_second,
    shares_for,
    version_in_force,
)

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
        {"version": 1, "effective_from": "2026-01-01T00:00:00Z", "status": "APPROVED"},
        {"version": 2, "effective_from": "2026-06-01T00:00:00Z", "status": "APPROVED"},
    ]
    assert version_in_force(versions, datetime(2026, 3, 1, tzinfo=UTC))["version"] == 1
    assert version_in_force(versions, datetime(2026, 7, 1, tzinfo=UTC))["version"] == 2
    with pytest.raises(FundingRuleNotFound):
        version_in_force(versions, datetime(2025, 1, 1, tzinfo=UTC))


def test_a_proposed_version_is_never_in_force_whatever_its_start():
    versions = [
        {"version": 1, "effective_from": "2026-01-01T00:00:00Z", "status": "APPROVED"},
        {"version": 2, "effective_from": "2026-02-01T00:00:00Z", "status": "PROPOSED"},
    ]
    assert version_in_force(versions, datetime(2026, 3, 1, tzinfo=UTC))["version"] == 1
    with pytest.raises(FundingRuleNotFound):
        version_in_force(versions[1:], datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("version", "approved"),
    [
        ({"shares": SHARES, "created_by": "admin"}, True),
        ({"shares": SHARES, "created_by": "issuer:brand-a"}, False),
        ({"shares": {"PLATFORM": 0, "BRAND": 10000, "MERCHANT": 0}, "created_by": "issuer:brand-a"}, True),
        (
            {
                "shares": {"PLATFORM": 0, "BRAND": 10000, "MERCHANT": 0},
                "merchant_overrides": {"m-1": SHARES},
                "created_by": "issuer:brand-a",
            },
            False,
        ),
    ],
)
def test_a_version_written_before_approvals_existed_is_approved_only_if_an_admin_or_its_brand_alone_funds_it(
    version, approved
):
    assert is_approved(version) is approved


def test_a_version_starts_at_the_next_whole_second_so_an_earlier_redemption_of_that_second_is_not_under_it():
    assert next_whole_second(datetime(2026, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)) == datetime(
        2026, 5, 1, 12, 0, 1, tzinfo=UTC
    )
    assert next_whole_second(datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)) == datetime(
        2026, 5, 1, 12, 0, 0, tzinfo=UTC
    )
