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
    platform_wide = create(api, keys["admin"], brand_ids=["brand-a"]).json["rule_id"]
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
    # A platform rule is usable by the campaigns of the brands it names (issue #10: not by any brand's).
    assert new_campaign(api, keys["issuer:brand-a"], brand_id=None, funding_rule_id=platform_wide)


# -- who may fund what (issue #10, point 3) --------------------------------------------------------

BRAND_ALONE = {"PLATFORM": 0, "BRAND": 10000, "MERCHANT": 0}
PLATFORM_ALL = {"PLATFORM": 10000, "BRAND": 0, "MERCHANT": 0}


def campaign_with(api, key, rule_id, **extra):
    body = {
        **extra,
        "name": "n",
        "type": "FIXED",
        "currency": "CNY",
        "amount": 100,
        "valid_days": 5,
        "total_quantity": 5,
        "funding_rule_id": rule_id,
    }
    return api.call("POST", "/v1/campaigns", api_key=key, body=body)


def approve(api, key, rule_id, version=1):
    return api.call("POST", f"/v1/funding-rules/{rule_id}/versions/{version}/approve", api_key=key)


def redeemed_and_cleared(api, keys, campaign_id):
    """Activates the campaign, issues and redeems one coupon at m-001, clears the redemption."""
    from coupons.data.ledger import LedgerStore
    from coupons.services.clearing import Clearer
    from tests.dynamo_json import from_item
    from tests.integration.conftest import TABLE
    from tests.integration.test_issuance_api import issue
    from tests.integration.test_redemption_api import redeem

    issuer = keys["issuer:brand-a"]
    assert api.call("POST", f"/v1/campaigns/{campaign_id}/activate", api_key=issuer).status == 200
    code = issue(api, issuer, campaign_id).json["code"]
    answer = redeem(api, keys["merchant:m-001"], code, order_amount=1000)
    assert answer.status == 201, answer.raw
    stored = next(i for i in api.items() if i["pk"]["S"] == f"REDEMPTION#{answer.json['redemption_id']}")
    ledger = LedgerStore(api.ddb, TABLE)
    assert Clearer(ledger).clear(from_item(stored)) == "posted"
    return ledger.journal(f"jnl_{answer.json['redemption_id']}")


def test_an_issuer_rule_in_which_its_brand_bears_everything_is_approved_and_its_campaigns_use_it(api, keys):
    rule = create(api, keys["issuer:brand-a"], shares=BRAND_ALONE).json
    assert rule["versions"][0]["status"] == "APPROVED"
    campaign = campaign_with(api, keys["issuer:brand-a"], rule["rule_id"])
    assert campaign.status == 201, campaign.raw
    journal = redeemed_and_cleared(api, keys, campaign.json["campaign_id"])
    assert journal["rule"]["rule_id"] == rule["rule_id"]
    assert {leg["account"]: leg["amount"] for leg in journal["legs"]} == {
        "brand:brand-a": -100,
        "merchant:m-001": 100,
    }


def test_an_issuer_rule_making_the_platform_pay_is_only_proposed_and_no_campaign_may_use_it(api, keys):
    # The attack: a brand writes a rule in which the platform pays for its coupons, and attaches it.
    answer = create(api, keys["issuer:brand-a"], shares=PLATFORM_ALL)
    assert answer.status == 201 and answer.json["versions"][0]["status"] == "PROPOSED"
    before = api.items()
    refused = campaign_with(api, keys["issuer:brand-a"], answer.json["rule_id"])
    assert_problem(refused, 422, "funding_rule_not_approved", field="funding_rule_id")
    assert api.items() == before
    # Nor can an admin attach a proposal to the brand's campaign before approving it.
    by_admin = campaign_with(api, keys["admin"], answer.json["rule_id"], brand_id="brand-a")
    assert_problem(by_admin, 422, "funding_rule_not_approved", field="funding_rule_id")


def test_a_proposed_version_on_an_approved_rule_is_never_used_by_clearing(api, keys):
    rule = create(api, keys["issuer:brand-a"], shares=BRAND_ALONE).json
    campaign = campaign_with(api, keys["issuer:brand-a"], rule["rule_id"]).json
    proposal = api.call(
        "POST",
        f"/v1/funding-rules/{rule['rule_id']}/versions",
        api_key=keys["issuer:brand-a"],
        body={"shares": PLATFORM_ALL},
    )
    assert proposal.status == 201 and proposal.json["versions"][1]["status"] == "PROPOSED"
    import time

    time.sleep(
        1.1
    )  # the proposal's effective_from (the next second) has passed: only its approval is missing
    journal = redeemed_and_cleared(api, keys, campaign["campaign_id"])
    assert journal["rule"]["version"] == 1
    assert "platform" not in {leg["account"] for leg in journal["legs"]}
    assert journal["party_shares"].get("PLATFORM", 0) == 0


def test_an_admin_approves_a_proposal_idempotently_from_then_on_never_before(api, keys):
    rule_id = create(api, keys["issuer:brand-a"]).json["rule_id"]
    assert_problem(approve(api, keys["issuer:brand-a"], rule_id), 403, "forbidden")
    assert_problem(
        approve(api, keys["admin"], rule_id, version=2), 404, "funding_rule_not_found", field="version"
    )
    first = approve(api, keys["admin"], rule_id)
    assert first.status == 200, first.raw
    (version,) = first.json["versions"]
    assert (version["status"], version["approved_by"]) == ("APPROVED", "admin")
    # Never retroactive: an approval takes effect from the approval on, not from the proposal.
    assert version["effective_from"] >= version["approved_at"][:19]
    again = approve(api, keys["admin"], rule_id)
    assert again.status == 200 and again.json["versions"] == first.json["versions"]
    assert campaign_with(api, keys["issuer:brand-a"], rule_id).status == 201


def test_an_issuer_may_not_name_other_brands_on_a_rule(api, keys):
    answer = create(api, keys["issuer:brand-a"], shares=BRAND_ALONE, brand_ids=["brand-b"])
    assert_problem(answer, 403, "forbidden", field="brand_ids")


def test_a_platform_rule_is_usable_only_by_the_brands_it_names(api, keys):
    named = create(api, keys["admin"], brand_ids=["brand-a"]).json["rule_id"]
    unnamed = create(api, keys["admin"]).json["rule_id"]
    assert campaign_with(api, keys["issuer:brand-a"], named).status == 201
    for key, rule_id in ((keys["issuer:brand-b"], named), (keys["issuer:brand-a"], unnamed)):
        assert_problem(
            campaign_with(api, key, rule_id), 422, "funding_rule_not_found", field="funding_rule_id"
        )
    # A brand reads the platform rules that name it, and does not learn which other brands they name.
    shared = create(api, keys["admin"], brand_ids=["brand-a", "brand-b"]).json["rule_id"]
    seen = api.call("GET", f"/v1/funding-rules/{shared}", api_key=keys["issuer:brand-b"]).json
    assert seen["brand_ids"] == ["brand-b"]
    assert_problem(
        api.call("GET", f"/v1/funding-rules/{unnamed}", api_key=keys["issuer:brand-a"]),
        404,
        "funding_rule_not_found",
    )


def test_a_version_made_half_a_second_after_a_redemption_does_not_clear_it(aws):
    """Issue #10 (6): a version made without effective_from at 12:00:00.5 starts at 12:00:01, so a
    redemption at 12:00:00.4 (stamped 12:00:00, as redemptions are) clears under the version before."""
    from coupons.data.ledger import LedgerStore
    from coupons.domain.funding import RuleTerms, RuleVersionTerms, version_in_force
    from coupons.domain.principals import Principal, Role
    from coupons.services import funding
    from tests.integration.conftest import TABLE

    store, admin = LedgerStore(aws, TABLE), Principal(Role.ADMIN)
    start = datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)
    rule = funding.create(store, RuleTerms(name="r", shares=SHARES, brand_ids=["b"]), admin, now=start)
    made = start + timedelta(hours=1, microseconds=500_000)
    changed = funding.add_version(
        store, rule["rule_id"], RuleVersionTerms(shares=BRAND_ALONE), admin, now=made
    )
    assert changed["versions"][1]["effective_from"] == "2030-05-01T13:00:01.000000Z"
    redeemed_at = (made - timedelta(microseconds=100_000)).replace(microsecond=0)  # 13:00:00
    assert version_in_force(changed["versions"], redeemed_at)["version"] == 1
    assert version_in_force(changed["versions"], redeemed_at + timedelta(seconds=1))["version"] == 2


def test_a_rule_holds_a_bounded_number_of_versions(api, keys, monkeypatch):
    """Issue #10 (5): every clearing reads a rule's versions; the list may not grow without end."""
    from coupons.domain import funding

    monkeypatch.setattr(funding, "MAX_VERSIONS", 3)
    rule_id = create(api, keys["admin"]).json["rule_id"]
    path = f"/v1/funding-rules/{rule_id}/versions"
    for _ in range(2):
        assert api.call("POST", path, api_key=keys["admin"], body={"shares": SHARES}).status == 201
    before = api.items()
    refused = api.call("POST", path, api_key=keys["admin"], body={"shares": SHARES})
    assert_problem(refused, 409, "funding_rule_version_limit")
    assert api.items() == before
