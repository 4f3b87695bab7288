"""The trace routes in-process: a redemption's chain (verified, redeemed, cleared, each with the audit
entries of the items it wrote), scoped per principal; a coupon's chain for its brand."""

from __future__ import annotations

from tests.events import load
from tests.integration.test_redemption_api import coupon, redeem


def _redeemed_and_cleared(api, keys, clearing, stream, audit_fn):
    code, _ = coupon(api, keys, funding_rule_id="fr_DEMO")
    rid = redeem(api, keys["merchant:m-001"], code).json["redemption_id"]
    stored = next(i for i in api.items() if i["pk"]["S"] == f"REDEMPTION#{rid}")
    event = load("clearing/redemption_batch")
    record = event["Records"][0]
    record["dynamodb"].update(Keys={"pk": stored["pk"], "sk": stored["sk"]}, NewImage=stored)
    event["Records"] = [record]
    assert clearing(event) == []
    assert audit_fn(stream.batch()) == []
    return code, rid


def test_a_redemption_trace_has_each_step_with_its_time_actor_and_audit_entries(
    api, keys, clearing, stream, audit_fn
):
    code, rid = _redeemed_and_cleared(api, keys, clearing, stream, audit_fn)
    answer = api.call("GET", f"/v1/redemptions/{rid}/trace", api_key=keys["admin"])
    assert answer.status == 200, answer.raw
    steps = {s["step"]: s for s in answer.json["steps"]}
    assert list(steps) == ["issued", "verified", "risk_decision", "redeemed", "cleared"]
    assert steps["verified"]["method"] == "CODE" and steps["redeemed"]["actor"] == "merchant:m-001"
    assert steps["risk_decision"]["action"] == "ALLOW" and steps["risk_decision"]["rule_id"] is None
    assert steps["cleared"]["rule"]["rule_id"] == "fr_DEMO"
    assert all(s["at"] and s["audit_entry_ids"] for s in steps.values())
    coupon_trace = api.call("GET", f"/v1/coupons/{code}/trace", api_key=keys["admin"])
    assert coupon_trace.status == 200, coupon_trace.raw
    assert [s["step"] for s in coupon_trace.json["steps"]][:4] == ["issued", "verified", "risk_decision", "redeemed"]


def test_a_trace_is_scoped_to_the_parties_of_the_redemption(api, keys, clearing, stream, audit_fn):
    code, rid = _redeemed_and_cleared(api, keys, clearing, stream, audit_fn)
    mine = api.call("GET", f"/v1/redemptions/{rid}/trace", api_key=keys["merchant:m-001"])
    assert mine.status == 200 and "issued" not in [s["step"] for s in mine.json["steps"]]
    assert api.call("GET", f"/v1/redemptions/{rid}/trace", api_key=keys["merchant:m-002"]).status == 404
    assert api.call("GET", f"/v1/coupons/{code}/trace", api_key=keys["merchant:m-001"]).status == 403
