"""POST/GET /v1/funding-rules: shares that sum to 10,000, versions that never change the past."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_issuance_api import new_campaign

SHARES = {"PLATFORM": 5000, "BRAND": 3000, "MERCHANT": 2000}


def create(api, key, **body):
    return api.call("POST", "/v1/funding-rules", api_key=key, body={"name": "r", "shares": SHARES, **body})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"shares": {**SHARES, "MERCHANT": 1999}}, "shares"),
        ({"shares": {**SHARES, "MERCHANT": -1}}, "shares.MERCHANT"),
        ({"shares": {**SHARES, "BANK": 0}}, "shares.BANK"),
        ({"merchant_overrides": {"m-1": {**SHARES, "BRAND": 0}}}, "merchant_overrides.m-1"),
        ({"name": ""}, "name"),
    ],
)
def test_an_invalid_rule_is_400_naming_the_field_and_writes_nothing(api, keys, body, field):
    before = api.items()
    assert_problem(create(api, keys["admin"], **body), 400, "validation_failed", field=field)
    assert api.items() == before


def test_a_rule_is_versioned_forward_only_and_read_back(api, keys):
    rule = create(api, keys["issuer:brand-a"]).json
    assert rule["brand_id"] == "brand-a" and [v["version"] for v in rule["versions"]] == [1]
    path = f"/v1/funding-rules/{rule['rule_id']}"
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    added = api.call(
        "POST",
        path + "/versions",
        api_key=keys["issuer:brand-a"],
        body={"shares": SHARES, "effective_from": later},
    )
    assert added.status == 201 and [v["version"] for v in added.json["versions"]] == [1, 2]
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    refused = api.call(
        "POST", path + "/versions", api_key=keys["admin"], body={"shares": SHARES, "effective_from": past}
    )
    assert_problem(refused, 400, "validation_failed", field="effective_from")
    assert (
        api.call("GET", path, api_key=keys["admin"])
        .json["versions"][1]["effective_from"]
        .startswith(later[:10])
    )
    assert_problem(api.call("GET", path, api_key=keys["issuer:brand-b"]), 404, "funding_rule_not_found")
    assert_problem(api.call("GET", path, api_key=keys["merchant:m-001"]), 404, "funding_rule_not_found")


def test_a_campaign_references_only_a_rule_it_may_use(api, keys):
    theirs = create(api, keys["issuer:brand-b"]).json["rule_id"]
    platform_wide = create(api, keys["admin"]).json["rule_id"]
    answer = api.call(
        "POST",
        "/v1/campaigns",
        api_key=keys["issuer:brand-a"],
        body={
            "name": "n",
            "type": "FIXED",
            "currency": "CNY",
            "amount": 100,
            "valid_days": 5,
            "total_quantity": 5,
            "funding_rule_id": theirs,
        },
    )
    assert_problem(answer, 422, "funding_rule_not_found", field="funding_rule_id")
    # A platform-wide rule is usable by any brand's campaign.
    assert new_campaign(api, keys["issuer:brand-a"], brand_id=None, funding_rule_id=platform_wide)
