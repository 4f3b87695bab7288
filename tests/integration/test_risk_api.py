"""Risk control over the API (issue #18): lists and rules kept by admins, and a redemption's rules
decided inside its one transaction (docs/risk.md)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_issuance_api import issue
from tests.integration.test_redemption_api import count_requests, coupon, redeem, redemptions_in
from tests.integration.test_redemption_retries import later

BLOCK_DEVICE = {
    "rule_id": "blocked-device",
    "condition": {"type": "list", "list": "block-device"},
    "action": "DENY",
    "reason": "device on the block list",
}


def velocity(rule_id, per, measure, unit, threshold, action="DENY", reason=None, **extra) -> dict:
    """A velocity rule: `measure` per `per` over `threshold` in a window of one `unit`."""
    condition = {"type": "velocity", "per": per, "measure": measure, "window": {"unit": unit}}
    condition.update(threshold=threshold, **extra)
    return {"rule_id": rule_id, "condition": condition, "action": action, "reason": reason or rule_id}


def rules(api, keys, *rules):
    answer = api.call("POST", "/v1/risk/rules", api_key=keys["admin"], body={"rules": list(rules)})
    assert answer.status == 201, answer.raw
    return answer.json


def block(api, keys, list_name, value, **extra):
    body = {"value": value, "reason": "fraud ring", **extra}
    return api.call("POST", f"/v1/risk/lists/{list_name}/entries", api_key=keys["admin"], body=body)


def risk_items(api):
    return [i for i in api.items() if i["pk"]["S"].startswith("RISK")]


def at(seconds_from_now: int) -> str:
    return datetime.fromtimestamp(time.time() + seconds_from_now, UTC).isoformat()


# -- lists and rules --------------------------------------------------------------------------------


def test_a_list_entry_is_put_with_its_reason_and_expiry_and_taken_off_again(api, keys):
    answer = block(api, keys, "block-ip", "::ffff:10.0.0.9", expires_at=at(3600))
    assert answer.status == 201, answer.raw
    assert (answer.json["list"], answer.json["value"], answer.json["reason"]) == (
        "block-ip",
        "10.0.0.9",
        "fraud ring",
    )
    assert answer.json["expires_at"].endswith("Z")
    path = "/v1/risk/lists/block-ip/entries"
    assert api.call("DELETE", path, api_key=keys["admin"], query={"value": "10.0.0.9"}).status == 204
    assert risk_items(api) == []
    assert_problem(
        api.call("DELETE", path, api_key=keys["admin"], query={"value": "10.0.0.9"}),
        404,
        "risk_list_entry_not_found",
        "value",
    )


@pytest.mark.parametrize(
    ("list_name", "body", "field"),
    [
        ("block-phone", {"value": "x", "reason": "r"}, "list"),
        ("block-ip", {"value": "not-an-ip", "reason": "r"}, "value"),
        ("block-user", {"value": "u-1"}, "reason"),
        ("block-user", {"value": "u-1", "reason": "r", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ("block-user", {"value": "u-1", "reason": "r", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_list_entry_is_a_400_naming_the_field_and_writes_nothing(api, keys, list_name, body, field):
    answer = api.call("POST", f"/v1/risk/lists/{list_name}/entries", api_key=keys["admin"], body=body)
    assert_problem(answer, 400, "validation_failed")
    assert field in answer.json.get("field", "") + answer.json.get("detail", "")
    assert risk_items(api) == []


def test_only_an_admin_keeps_the_lists_and_rules(api, keys):
    assert block(api, {"admin": keys["merchant:m-001"]}, "block-device", "d-1").status == 403
    answer = api.call("POST", "/v1/risk/rules", api_key=keys["issuer:brand-a"], body={"rules": []})
    assert answer.status == 403
    assert risk_items(api) == []


def test_each_rule_set_stored_gets_the_next_version(api, keys):
    assert rules(api, keys, BLOCK_DEVICE)["version"] == 1
    second = rules(api, keys)
    assert (second["version"], second["rules"]) == (2, [])


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({**BLOCK_DEVICE, "action": "BLOCK"}, "rules.0.action"),
        ({**BLOCK_DEVICE, "action": "ALLOW"}, "rules.0.action"),
        (
            {
                "rule_id": "farm",
                "condition": {"type": "velocity", "per": "device", "measure": "count",
                              "window": {"unit": "fortnight"}, "threshold": 3},
                "action": "DENY",
                "reason": "r",
            },
            "rules.0.condition.velocity.window.unit",
        ),
        (
            {
                "rule_id": "farm",
                "condition": {"type": "velocity", "per": "device", "measure": "count",
                              "window": {"unit": "day", "size": 8}, "threshold": 3},
                "action": "DENY",
                "reason": "r",
            },
            "rules.0.condition.velocity.window.size",
        ),
    ],
)  # fmt: skip
def test_a_bad_rule_is_a_400_naming_the_field_and_stores_no_version(api, keys, rule, field):
    answer = api.call("POST", "/v1/risk/rules", api_key=keys["admin"], body={"rules": [rule]})
    assert_problem(answer, 400, "validation_failed")
    assert field in [e["field"] for e in answer.json["errors"]], answer.raw
    assert risk_items(api) == []


# -- inside the one request -------------------------------------------------------------------------


def test_a_blocked_device_never_redeems_and_is_told_which_rule_of_which_version(api, keys):
    code, _ = coupon(api, keys)
    version = rules(api, keys, BLOCK_DEVICE)["version"]
    assert block(api, keys, "block-device", "d-bad").status == 201
    before = api.items()
    answer = redeem(api, keys["merchant:m-001"], code, device_id="d-bad")
    assert_problem(answer, 403, "risk_denied")
    assert (answer.json["rule_id"], answer.json["rule_version"], answer.json["reason"]) == (
        "blocked-device",
        version,
        "device on the block list",
    )
    # Nothing of the redemption written (no redemption, the coupon untouched, no counter); only the
    # decision's record, for GET /v1/risk/decisions.
    assert [i for i in api.items() if not i["pk"]["S"].startswith("RISKDECISION#")] == before
    assert redeem(api, keys["merchant:m-001"], code, device_id="d-good").status == 201


def test_a_blocked_device_learns_nothing_of_the_coupon(api, keys):
    rules(api, keys, BLOCK_DEVICE)
    block(api, keys, "block-device", "d-bad")
    code, _ = coupon(api, keys)
    assert redeem(api, keys["merchant:m-001"], code).status == 201
    assert_problem(
        redeem(api, keys["merchant:m-001"], code, order_id="o-2", device_id="d-bad"), 403, "risk_denied"
    )


def test_an_expired_entry_stops_blocking(api, keys):
    code, _ = coupon(api, keys)
    rules(api, keys, BLOCK_DEVICE)
    assert block(api, keys, "block-device", "d-bad", expires_at=at(60)).status == 201
    assert_problem(redeem(api, keys["merchant:m-001"], code, device_id="d-bad"), 403, "risk_denied")
    later(61)
    assert redeem(api, keys["merchant:m-001"], code, device_id="d-bad").status == 201


def test_a_blocked_caller_ip_is_refused_whatever_client_ip_the_till_names(api, keys):
    code, _ = coupon(api, keys)
    rules(
        api,
        keys,
        {**BLOCK_DEVICE, "rule_id": "blocked-ip", "condition": {"type": "list", "list": "block-ip"}},
    )
    block(api, keys, "block-ip", "203.0.113.7")  # the sample events' sourceIp
    assert_problem(redeem(api, keys["merchant:m-001"], code, client_ip="198.51.100.1"), 403, "risk_denied")
    assert redemptions_in(api) == []


def test_a_reviewed_redemption_succeeds_and_carries_its_hold(api, keys):
    rules(api, keys, velocity("busy-store", "store", "count", "hour", 1, "REVIEW", "more than 1 an hour"))
    first, _ = coupon(api, keys, user="u-1")
    second, _ = coupon(api, keys, user="u-2")
    assert "risk" not in redeem(api, keys["merchant:m-001"], first).json
    answer = redeem(api, keys["merchant:m-001"], second, order_id="o-2")
    assert answer.status == 201, answer.raw
    assert answer.json["risk"] == {
        "action": "REVIEW",
        "rule_id": "busy-store",
        "rule_version": 1,
        "reason": "more than 1 an hour",
    }
    record = api.call("GET", f"/v1/redemptions/{answer.json['redemption_id']}", api_key=keys["admin"]).json
    assert record["review_hold"] == f"review:{answer.json['redemption_id']}"
    [decision] = api.call(
        "GET", "/v1/risk/decisions", api_key=keys["admin"], query={"subject": f"coupon:{second}"}
    ).json["items"]
    assert (decision["action"], decision["source_id"]) == ("REVIEW", answer.json["redemption_id"])


def test_a_redemption_with_rules_is_still_one_request(api, keys):
    rules(api, keys, BLOCK_DEVICE)
    warm, campaign_id = coupon(api, keys, user="u-0")
    code = issue(api, keys["admin"], campaign_id, "u-1").json["code"]
    # The container reads the rules (and the campaign) once.
    assert redeem(api, keys["merchant:m-001"], warm, device_id="d-1").status == 201
    calls = count_requests(api)
    assert redeem(api, keys["merchant:m-001"], code, order_id="o-2", device_id="d-1").status == 201
    assert calls == ["TransactWriteItems"]


def test_a_bad_device_or_client_ip_is_a_400_naming_it(api, keys):
    code, _ = coupon(api, keys)
    for field, value in (("client_ip", "999.1.1.1"), ("device_id", ""), ("device_id", "a b")):
        answer = redeem(api, keys["merchant:m-001"], code, **{field: value})
        assert_problem(answer, 400, "validation_failed")
        assert field in [e["field"] for e in answer.json["errors"]]
    assert redemptions_in(api) == []


def test_every_rule_decision_can_be_read_by_each_of_its_subjects_newest_first(api, keys):
    code, _ = coupon(api, keys)
    rules(api, keys, BLOCK_DEVICE)
    block(api, keys, "block-device", "d-bad")
    redeem(api, keys["merchant:m-001"], code, device_id="d-bad", client_ip="::ffff:198.51.100.3")
    assert redeem(api, keys["merchant:m-001"], code, device_id="d-ok").status == 201  # no rule: not recorded
    for subject in (
        "device:d-bad",
        "merchant:m-001",
        f"coupon:{code}",
        "ip:198.51.100.3",
        "caller_ip:203.0.113.7",
    ):
        answer = api.call("GET", "/v1/risk/decisions", api_key=keys["admin"], query={"subject": subject})
        assert answer.status == 200, answer.raw
        [decision] = answer.json["items"]
        assert (decision["action"], decision["rule_id"], decision["rule_version"]) == (
            "DENY",
            "blocked-device",
            1,
        )
        assert "source_id" not in decision  # denied: no redemption was made
    none = api.call("GET", "/v1/risk/decisions", api_key=keys["admin"], query={"subject": "device:d-ok"})
    assert none.json["items"] == []
    bad = api.call("GET", "/v1/risk/decisions", api_key=keys["admin"], query={"subject": "planet:mars"})
    assert_problem(bad, 400, "validation_failed")
    assert (
        api.call(
            "GET", "/v1/risk/decisions", api_key=keys["merchant:m-001"], query={"subject": "device:d-bad"}
        ).status
        == 403
    )


def test_an_issuance_rule_stops_one_device_claiming_for_many_users(api, keys):
    from tests.integration.test_issuance_api import active_campaign

    farm = velocity(
        "claim-farm", "device", "distinct", "day", 2, reason="one device claiming for many users", of="user"
    )
    rules(api, keys, {**farm, "applies_to": "ISSUANCE"})
    campaign_id = active_campaign(api, keys, per_user_limit=10)
    for user in ("u-1", "u-2", "u-1"):
        assert issue(api, keys["admin"], campaign_id, user, device_id="d-farm").status == 201
    denied = issue(api, keys["admin"], campaign_id, "u-3", device_id="d-farm")
    assert_problem(denied, 403, "risk_denied")
    assert denied.json["rule_id"] == "claim-farm"
    assert issue(api, keys["admin"], campaign_id, "u-3", device_id="d-home").status == 201
    assert_problem(issue(api, keys["admin"], campaign_id, "u-4", client_ip="nope"), 400, "validation_failed")
