"""POST/GET /v1/campaigns: created strictly, read back equal, seen only by those who may."""

import pytest

from tests.integration.test_api_plumbing import assert_problem, campaign_body

PERCENT = {"type": "PERCENT", "amount": None, "min_order": None, "percent_bps": 1500, "max_discount": 3000}


def create(api, key, **changes):
    body = {k: v for k, v in campaign_body(**changes).items() if v is not None}
    answer = api.call("POST", "/v1/campaigns", api_key=key, body=body)
    assert answer.status == 201, answer.raw
    return answer.json


def test_an_admin_creates_a_campaign_and_reads_it_back_equal(api, keys):
    created = create(api, keys["admin"])
    assert created["status"] == "DRAFT" and created["brand_id"] == "brand-demo"
    answer = api.call("GET", f"/v1/campaigns/{created['campaign_id']}", api_key=keys["admin"])
    assert answer.status == 200
    assert answer.json == created


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({**PERCENT, "percent_bps": 20000}, "percent_bps"),
        ({"amount": -5}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"currency": "ABC"}, "currency"),
        (
            {"valid_days": None, "valid_from": "2027-02-01T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z"},
            "valid_until",
        ),
        ({"total_quantity": -1}, "total_quantity"),
        ({"type": "PERCENT"}, "max_discount"),  # the first missing term, by name
    ],
)
def test_bad_terms_are_a_400_naming_the_field_and_write_nothing(api, keys, changes, field):
    before = api.items()
    body = {k: v for k, v in campaign_body(**changes).items() if v is not None}
    answer = api.call("POST", "/v1/campaigns", api_key=keys["admin"], body=body)
    assert_problem(answer, 400, "validation_failed", field=field)
    assert api.items() == before


def test_an_issuer_creates_for_its_own_brand_only(api, keys):
    mine = create(api, keys["issuer:brand-a"], brand_id=None)
    assert mine["brand_id"] == "brand-a" and mine["created_by"] == "issuer:brand-a"
    answer = api.call(
        "POST", "/v1/campaigns", api_key=keys["issuer:brand-a"], body=campaign_body(brand_id="brand-b")
    )
    assert_problem(answer, 403, "forbidden", field="brand_id")


def test_an_issuer_cannot_see_another_brands_campaign(api, keys):
    theirs = create(api, keys["issuer:brand-b"], brand_id=None)
    answer = api.call("GET", f"/v1/campaigns/{theirs['campaign_id']}", api_key=keys["issuer:brand-a"])
    assert_problem(answer, 404, "campaign_not_found")


def test_a_merchant_sees_a_campaign_only_where_it_may_redeem_it(api, keys):
    limited = create(api, keys["admin"], eligible_merchants=["m-001"])
    path = f"/v1/campaigns/{limited['campaign_id']}"
    assert api.call("GET", path, api_key=keys["merchant:m-001"]).status == 200
    assert_problem(api.call("GET", path, api_key=keys["merchant:m-002"]), 404, "campaign_not_found")
    assert_problem(api.call("GET", "/v1/campaigns", api_key=keys["merchant:m-001"]), 403, "forbidden")


def test_an_unknown_campaign_is_404(api, keys):
    assert_problem(
        api.call("GET", "/v1/campaigns/cmp_nope", api_key=keys["admin"]), 404, "campaign_not_found"
    )


def test_the_list_pages_newest_first_and_an_issuer_lists_only_its_brand(api, keys):
    made = [
        create(api, keys["admin"], name=f"c{i}", brand_id="brand-a" if i % 2 else "brand-b") for i in range(5)
    ]
    seen, cursor = [], None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", "/v1/campaigns", api_key=keys["admin"], query=query).json
        assert len(page["items"]) <= 2
        seen += [c["campaign_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [c["campaign_id"] for c in reversed(made)]
    brand_a = api.call("GET", "/v1/campaigns", api_key=keys["issuer:brand-a"]).json["items"]
    assert {c["brand_id"] for c in brand_a} == {"brand-a"} and len(brand_a) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "500"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"cursor": "%%%"}, "cursor"),
    ],
)
def test_bad_paging_parameters_are_400_naming_them(api, keys, query, field):
    answer = api.call("GET", "/v1/campaigns", api_key=keys["admin"], query=query)
    assert answer.status == 400 and answer.json["field"] == field, answer.raw


def test_a_cursor_from_another_listing_is_refused(api, keys):
    for i in range(3):
        create(api, keys["admin"], name=f"c{i}")
    cursor = api.call("GET", "/v1/campaigns", api_key=keys["admin"], query={"limit": "1"}).json["next_cursor"]
    answer = api.call("GET", "/v1/campaigns", api_key=keys["issuer:brand-a"], query={"cursor": cursor})
    assert_problem(answer, 400, "invalid_cursor", field="cursor")


def test_a_created_campaign_matches_its_documented_schema(api, keys):
    from coupons.domain.campaigns import Campaign

    Campaign.model_validate(create(api, keys["admin"]))
    doc = api.call("GET", "/v1/openapi.json").json
    created = doc["paths"]["/v1/campaigns"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"]["$ref"].endswith("/Campaign")


def test_a_clash_of_code_tags_gets_the_campaign_another_tag(api, keys, monkeypatch):
    from coupons.domain import campaigns as campaign_rules
    from coupons.domain import codes

    first = create(api, keys["admin"])
    tags = iter([first["code_tag"], "Z0Z0"])  # the new campaign draws the first one's tag, then another
    monkeypatch.setattr(campaign_rules, "new_tag", lambda: next(tags))
    monkeypatch.setattr(codes, "new_tag", lambda: next(tags))
    second = create(api, keys["admin"])
    assert second["code_tag"] == "Z0Z0"


def test_a_merchant_reads_only_what_a_till_needs_and_nothing_about_other_parties(api, keys):
    """Issue #10 (7): not the eligible users, the other merchants, the budget, the rule or the counters."""
    made = create(
        api,
        keys["admin"],
        eligible_merchants=["m-001", "m-002"],
        eligible_users=[f"u-{i}" for i in range(50)],
        budget=100_000,
    )
    answer = api.call("GET", f"/v1/campaigns/{made['campaign_id']}", api_key=keys["merchant:m-001"])
    assert answer.status == 200, answer.raw
    till = {
        "campaign_id",
        "name",
        "type",
        "currency",
        "amount",
        "percent_bps",
        "max_discount",
        "min_order",
        "valid_from",
        "valid_until",
        "valid_days",
        "status",
        "settlement_cycle",
        "verification_methods",
    }
    assert set(answer.json) <= till
    assert {k: answer.json[k] for k in ("campaign_id", "type", "currency", "amount", "status")} == {
        k: made[k] for k in ("campaign_id", "type", "currency", "amount", "status")
    }
    # The same campaign for its admin: all of it.
    assert {"eligible_users", "eligible_merchants", "budget", "issued_count"} <= set(
        api.call("GET", f"/v1/campaigns/{made['campaign_id']}", api_key=keys["admin"]).json
    )
