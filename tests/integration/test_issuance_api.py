"""Issuing coupons over the API: lifecycle, limits, targeting, codes, reads, voids, wallets."""

from datetime import UTC, datetime, timedelta

import pytest

from coupons.domain import codes
from coupons.domain.codes import normalize
from tests.integration.test_api_plumbing import assert_problem, campaign_body


def new_campaign(api, key, **changes):
    body = {k: v for k, v in campaign_body(**changes).items() if v is not None}
    answer = api.call("POST", "/v1/campaigns", api_key=key, body=body)
    assert answer.status == 201, answer.raw
    return answer.json["campaign_id"]


def active_campaign(api, keys, **changes):
    campaign_id = new_campaign(api, keys["admin"], **changes)
    assert api.call("POST", f"/v1/campaigns/{campaign_id}/activate", api_key=keys["admin"]).status == 200
    return campaign_id


def issue(api, key, campaign_id, user="u-1", headers=None, **extra):
    body = {"user_id": user, **extra}
    return api.call("POST", f"/v1/campaigns/{campaign_id}/coupons", api_key=key, body=body, headers=headers)


def coupons_in(api):
    return [i for i in api.items() if i["pk"]["S"].startswith("COUPON#")]


def test_a_draft_issues_nothing_until_activated_and_a_paused_or_ended_one_stops(api, keys):
    campaign_id = new_campaign(api, keys["admin"])
    assert_problem(issue(api, keys["admin"], campaign_id), 409, "campaign_not_active")
    path = f"/v1/campaigns/{campaign_id}"
    assert api.call("POST", path + "/activate", api_key=keys["admin"]).json["status"] == "ACTIVE"
    assert issue(api, keys["admin"], campaign_id, "u-1").status == 201
    assert api.call("POST", path + "/pause", api_key=keys["admin"]).json["status"] == "PAUSED"
    assert_problem(issue(api, keys["admin"], campaign_id, "u-2"), 409, "campaign_not_active")
    assert api.call("POST", path + "/activate", api_key=keys["admin"]).status == 200
    assert issue(api, keys["admin"], campaign_id, "u-2").status == 201
    assert api.call("POST", path + "/end", api_key=keys["admin"]).json["status"] == "ENDED"
    assert_problem(issue(api, keys["admin"], campaign_id, "u-3"), 409, "campaign_not_active")
    assert len(coupons_in(api)) == 2


@pytest.mark.parametrize(("setup", "action"), [([], "pause"), (["end"], "activate"), (["end"], "end")])
def test_a_transition_from_the_wrong_status_is_409_and_changes_nothing(api, keys, setup, action):
    campaign_id = new_campaign(api, keys["admin"])
    for step in setup:
        api.call("POST", f"/v1/campaigns/{campaign_id}/{step}", api_key=keys["admin"])
    before = api.call("GET", f"/v1/campaigns/{campaign_id}", api_key=keys["admin"]).json["status"]
    answer = api.call("POST", f"/v1/campaigns/{campaign_id}/{action}", api_key=keys["admin"])
    assert_problem(answer, 409, "invalid_status_transition")
    assert api.call("GET", f"/v1/campaigns/{campaign_id}", api_key=keys["admin"]).json["status"] == before


def test_an_issued_coupon_has_a_valid_code_its_owner_and_validity_from_issue(api, keys):
    campaign_id = active_campaign(api, keys, code_prefix="XMAS")
    coupon = issue(api, keys["admin"], campaign_id, "u-7").json
    assert normalize(coupon["code"]) == coupon["code"] and coupon["code"].startswith("XMAS")
    campaign = api.call("GET", f"/v1/campaigns/{campaign_id}", api_key=keys["admin"]).json
    assert codes.tag_of(coupon["code"]) == campaign["code_tag"]
    assert normalize(coupon["display_code"]) == coupon["code"]
    issued = datetime.fromisoformat(coupon["issued_at"].replace("Z", "+00:00"))
    until = datetime.fromisoformat(coupon["valid_until"].replace("Z", "+00:00"))
    assert until - issued == timedelta(days=30)
    read = api.call("GET", f"/v1/coupons/{coupon['display_code'].lower()}", api_key=keys["admin"]).json
    assert (read["state"], read["user_id"], read["campaign_id"]) == ("ISSUED", "u-7", campaign_id)
    assert [h["event"] for h in read["history"]] == ["ISSUED"]
    counters = api.call("GET", f"/v1/campaigns/{campaign_id}", api_key=keys["admin"]).json
    assert (counters["issued_count"], counters["budget_used"]) == (1, 1000)


def test_a_gift_card_carries_its_balance(api, keys):
    campaign_id = active_campaign(api, keys, type="GIFT_CARD", amount=50000, min_order=None)
    coupon = issue(api, keys["admin"], campaign_id).json
    assert coupon["balance"] == 50000


def test_absolute_validity_is_copied_and_a_closed_issuance_window_refuses(api, keys):
    soon = datetime.now(UTC) + timedelta(days=1)
    later = soon + timedelta(days=10)
    campaign_id = active_campaign(api, keys, valid_days=None, valid_until=later.isoformat())
    assert issue(api, keys["admin"], campaign_id).json["valid_until"] == later.isoformat().replace(
        "+00:00", "Z"
    )
    not_yet = active_campaign(api, keys, issuance_starts_at=soon.isoformat())
    assert_problem(issue(api, keys["admin"], not_yet), 409, "outside_issuance_window")


def test_limits_refuse_with_their_own_codes(api, keys):
    campaign_id = active_campaign(api, keys, total_quantity=2, per_user_limit=1)
    assert issue(api, keys["admin"], campaign_id, "u-1").status == 201
    assert_problem(
        issue(api, keys["admin"], campaign_id, "u-1"), 409, "per_user_limit_reached", field="user_id"
    )
    assert issue(api, keys["admin"], campaign_id, "u-2").status == 201
    assert_problem(issue(api, keys["admin"], campaign_id, "u-3"), 409, "campaign_exhausted")
    assert len(coupons_in(api)) == 2


def test_quota_left_on_any_shard_is_found_before_refusing(api, keys):
    campaign_id = active_campaign(api, keys, total_quantity=5, shards=8)
    statuses = [issue(api, keys["admin"], campaign_id, f"u-{i}").status for i in range(7)]
    assert statuses == [201] * 5 + [409] * 2


def test_the_budget_binds_before_the_quantity(api, keys):
    campaign_id = active_campaign(
        api, keys, amount=100, min_order=None, budget=700, total_quantity=100, shards=4
    )
    statuses = [issue(api, keys["admin"], campaign_id, f"u-{i}").status for i in range(9)]
    assert statuses.count(201) == 7
    counters = api.call("GET", f"/v1/campaigns/{campaign_id}", api_key=keys["admin"]).json
    assert (counters["issued_count"], counters["budget_used"], counters["capacity"]) == (7, 700, 7)


def test_bulk_issuance_reports_each_user_and_one_refusal_undoes_nothing(api, keys):
    campaign_id = active_campaign(api, keys, total_quantity=3, per_user_limit=1)
    issue(api, keys["admin"], campaign_id, "u-1")
    answer = api.call(
        "POST",
        f"/v1/campaigns/{campaign_id}/coupons",
        api_key=keys["admin"],
        body={"user_ids": ["u-1", "u-2", "u-3", "u-4"]},
    )
    assert answer.status == 200
    outcome = {r["user_id"]: r.get("reason", r["status"]) for r in answer.json["results"]}
    assert outcome == {
        "u-1": "per_user_limit_reached",
        "u-2": "ISSUED",
        "u-3": "ISSUED",
        "u-4": "campaign_exhausted",
    }
    assert (answer.json["issued"], answer.json["refused"]) == (2, 2)
    assert len(coupons_in(api)) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_ids": []}, "user_ids"),
        ({"user_ids": [f"u-{i}" for i in range(501)]}, "user_ids"),
        ({"user_ids": ["u-1", "u-1"]}, "user_ids"),
        ({"user_ids": ["x" * 129]}, "user_ids.0"),
        ({"user_id": "x" * 129}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": 42}, "user_id"),
        ({"user_id": "u-1", "user_ids": ["u-2"]}, "user_id"),
        ({}, "user_id"),
        ({"user_id": "u-1", "colour": "red"}, "colour"),
    ],
)
def test_bad_issue_requests_are_400_naming_the_field_and_write_nothing(api, keys, body, field):
    campaign_id = active_campaign(api, keys)
    before = api.items()
    answer = api.call("POST", f"/v1/campaigns/{campaign_id}/coupons", api_key=keys["admin"], body=body)
    assert_problem(answer, 400, "validation_failed", field=field)
    assert api.items() == before


def test_a_whole_bulk_call_on_a_campaign_that_cannot_issue_writes_nothing(api, keys):
    campaign_id = new_campaign(api, keys["admin"])
    before = api.items()
    answer = api.call(
        "POST", f"/v1/campaigns/{campaign_id}/coupons", api_key=keys["admin"], body={"user_ids": ["a", "b"]}
    )
    assert_problem(answer, 409, "campaign_not_active")
    assert api.items() == before


def test_a_targeted_campaign_issues_only_to_its_audience(api, keys):
    campaign_id = active_campaign(api, keys, eligible_users=["vip-1"], eligible_segments=["gold"])
    assert issue(api, keys["admin"], campaign_id, "vip-1").status == 201
    assert issue(api, keys["admin"], campaign_id, "u-2", segment="gold").status == 201
    assert_problem(issue(api, keys["admin"], campaign_id, "u-3"), 422, "user_not_eligible", field="user_id")
    assert_problem(issue(api, keys["admin"], campaign_id, "u-4", segment="silver"), 422, "user_not_eligible")


def test_only_an_admin_or_the_campaigns_issuer_issues(api, keys):
    campaign_id = new_campaign(api, keys["issuer:brand-a"], brand_id=None)
    api.call("POST", f"/v1/campaigns/{campaign_id}/activate", api_key=keys["issuer:brand-a"])
    assert issue(api, keys["issuer:brand-a"], campaign_id).status == 201
    assert_problem(issue(api, keys["issuer:brand-b"], campaign_id, "u-2"), 404, "campaign_not_found")
    assert_problem(issue(api, keys["merchant:m-001"], campaign_id, "u-3"), 403, "forbidden")
    answer = api.call("POST", f"/v1/campaigns/{campaign_id}/pause", api_key=keys["issuer:brand-b"])
    assert_problem(answer, 404, "campaign_not_found")


def test_issuing_replays_under_the_same_idempotency_key(api, keys):
    campaign_id = active_campaign(api, keys, per_user_limit=5)
    first = issue(api, keys["admin"], campaign_id, headers={"Idempotency-Key": "issue-1"})
    again = issue(api, keys["admin"], campaign_id, headers={"Idempotency-Key": "issue-1"})
    assert (again.status, again.raw) == (first.status, first.raw)
    assert len(coupons_in(api)) == 1


def test_who_sees_what_of_a_coupon(api, keys):
    campaign_id = new_campaign(api, keys["issuer:brand-a"], brand_id=None, eligible_merchants=["m-001"])
    api.call("POST", f"/v1/campaigns/{campaign_id}/activate", api_key=keys["issuer:brand-a"])
    code = issue(api, keys["issuer:brand-a"], campaign_id, "u-9").json["code"]
    path = f"/v1/coupons/{code}"
    assert api.call("GET", path, api_key=keys["issuer:brand-a"]).json["user_id"] == "u-9"
    assert_problem(api.call("GET", path, api_key=keys["issuer:brand-b"]), 404, "coupon_not_found")
    seen = api.call("GET", path, api_key=keys["merchant:m-001"]).json
    assert seen["eligible_here"] is True and seen["terms"]["amount"] == 1000
    assert "user_id" not in seen and "history" not in seen
    assert api.call("GET", path, api_key=keys["merchant:m-002"]).json["eligible_here"] is False


def test_an_unknown_code_is_404_and_a_mistyped_one_400_without_any_dynamodb_call(api, keys):
    import dependencies
    from coupons.domain.codes import new_code

    api.call("GET", "/v1/campaigns", api_key=keys["admin"])  # the key is verified and cached now
    assert_problem(
        api.call("GET", f"/v1/coupons/{new_code('TAG0')}", api_key=keys["admin"]), 404, "coupon_not_found"
    )
    calls = []
    client = dependencies.coupons()._client
    client.meta.events.register("before-call.dynamodb", lambda **kw: calls.append(kw["model"].name))
    code = new_code("TAG0")
    typo = code[:3] + ("0" if code[3] != "0" else "1") + code[4:]
    assert_problem(
        api.call("GET", f"/v1/coupons/{typo}", api_key=keys["admin"]), 400, "code_checksum_invalid"
    )
    assert calls == []


def test_void_is_for_unused_coupons_by_admin_or_issuer(api, keys):
    campaign_id = active_campaign(api, keys)
    code = issue(api, keys["admin"], campaign_id).json["code"]
    assert_problem(
        api.call("POST", f"/v1/coupons/{code}/void", api_key=keys["merchant:m-001"]), 403, "forbidden"
    )
    voided = api.call(
        "POST", f"/v1/coupons/{code}/void", api_key=keys["admin"], body={"reason": "sent by mistake"}
    )
    assert voided.status == 200 and voided.json["state"] == "VOID"
    assert [h["event"] for h in voided.json["history"]] == ["ISSUED", "VOIDED"]
    again = api.call("POST", f"/v1/coupons/{code}/void", api_key=keys["admin"])
    assert_problem(again, 409, "coupon_not_voidable")


def test_a_coupon_past_its_validity_reads_as_expired(api, keys):
    campaign_id = active_campaign(api, keys)
    code = issue(api, keys["admin"], campaign_id).json["code"]
    api.ddb.update_item(
        TableName=__import__("tests.integration.conftest", fromlist=["TABLE"]).TABLE,
        Key={"pk": {"S": f"COUPON#{code}"}, "sk": {"S": "COUPON"}},
        UpdateExpression="SET valid_until = :past",
        ExpressionAttributeValues={":past": {"S": "2020-01-01T00:00:00Z"}},
    )
    assert api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json["state"] == "EXPIRED"
    expired = api.call("GET", "/v1/users/u-1/coupons", api_key=keys["admin"], query={"state": "EXPIRED"}).json
    assert [c["code"] for c in expired["items"]] == [code]
    assert (
        api.call("GET", "/v1/users/u-1/coupons", api_key=keys["admin"], query={"state": "ISSUED"}).json[
            "items"
        ]
        == []
    )


def test_a_wallet_pages_newest_first_and_an_issuer_sees_only_its_brand(api, keys):
    ours = new_campaign(api, keys["issuer:brand-a"], brand_id=None, per_user_limit=5)
    theirs = new_campaign(api, keys["issuer:brand-b"], brand_id=None)
    for campaign_id, key in ((ours, "issuer:brand-a"), (theirs, "issuer:brand-b")):
        api.call("POST", f"/v1/campaigns/{campaign_id}/activate", api_key=keys[key])
    codes = [issue(api, keys["issuer:brand-a"], ours, "u-5").json["code"] for _ in range(3)]
    issue(api, keys["issuer:brand-b"], theirs, "u-5")
    seen, cursor = [], None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", "/v1/users/u-5/coupons", api_key=keys["issuer:brand-a"], query=query).json
        seen += [c["code"] for c in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == list(reversed(codes))
    everything = api.call("GET", "/v1/users/u-5/coupons", api_key=keys["admin"]).json["items"]
    assert len(everything) == 4
    assert_problem(api.call("GET", "/v1/users/u-5/coupons", api_key=keys["merchant:m-001"]), 403, "forbidden")
