"""Issue #17's e2e acceptance on the stack `make local` serves: redeem → settle → trace over HTTP shows
every step (issued, verified, redeemed, cleared, settled with the transfer and the channel's reference),
and the redemption's audit entry is proven in the signed log by an independent implementation (RFC 6962
hashing written in tests/audit_proofs.py, `cryptography`'s ECDSA over the KMS public key)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.audit_proofs import check_independently
from tests.e2e.conftest import REPO, own_local_stack
from tests.e2e.support import Api, aws_client, redeem, wait_for_clearing

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

WAIT_S = 60


# A stack of its own: this module settles T+2, and the settlement module closes that date's run on the
# shared stack (a redemption made after it would wait for a run that is over).
local_stack = own_local_stack()


def _sign(local_stack) -> None:
    answer = aws_client(local_stack, "lambda").invoke(
        FunctionName=local_stack["outputs"]["AuditSignerFunctionName"], Payload=b"{}"
    )
    assert "FunctionError" not in answer, answer["Payload"].read()


@pytest.fixture(scope="module")
def traced(local_stack, api: Api, keys):
    admin = keys["admin"]
    tag = uuid.uuid4().hex[:8]
    brand, merchant = f"brand-tr-{tag}", f"m-tr-{tag}"
    merchant_key = api.ok("POST", "/v1/api-keys", admin, {"principal": f"merchant:{merchant}"})["api_key"]
    rule = api.ok("POST", "/v1/funding-rules", admin, {
        "name": f"trace {tag}", "shares": {"PLATFORM": 5000, "BRAND": 3000, "MERCHANT": 2000}, "brand_ids": [brand],
    })  # fmt: skip
    campaign = api.ok("POST", "/v1/campaigns", admin, {
        "name": f"trace {tag}", "brand_id": brand, "type": "FIXED", "amount": 1000, "currency": "CNY",
        "valid_days": 30, "total_quantity": 10, "funding_rule_id": rule["rule_id"], "settlement_cycle": "T+2",
    })["campaign_id"]  # fmt: skip
    api.ok("POST", f"/v1/campaigns/{campaign}/activate", admin)
    effective = datetime.fromisoformat(rule["versions"][0]["effective_from"].replace("Z", "+00:00"))
    time.sleep(max(0.0, effective.timestamp() + 1.05 - time.time()))  # the rule in force when redeemed
    code = api.ok("POST", f"/v1/campaigns/{campaign}/coupons", admin, {"user_id": f"u-{tag}"})["code"]
    redemption = redeem(api, merchant_key, merchant, code, 5000)
    wait_for_clearing(api, admin, redemption["redemption_id"])
    today = datetime.now(ZoneInfo(local_stack["time_zone"])).date()
    day = (today + timedelta(days=2)).isoformat()  # T+2: a date no other e2e test settles
    done = subprocess.run(
        [sys.executable, "-m", "infra.local.settle", "--date", day, "--endpoints-file", local_stack["endpoints_file"]],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return {
        "redemption": redemption,
        "code": code,
        "merchant": merchant,
        "brand": brand,
        "merchant_key": merchant_key,
        "day": day,
    }


def _trace_until(api, path, key, wanted: set[str]) -> dict:
    deadline = time.monotonic() + WAIT_S
    while True:
        trace = api.ok("GET", path, key)
        steps = {s["step"] for s in trace["steps"]}
        if wanted <= steps and all(s["audit_entry_ids"] for s in trace["steps"]):
            return trace
        assert time.monotonic() < deadline, f"trace still {trace}"
        time.sleep(0.5)


def test_the_redemption_trace_shows_every_step_with_time_actor_and_audit_entries(api, keys, traced):
    rid = traced["redemption"]["redemption_id"]
    trace = _trace_until(api, f"/v1/redemptions/{rid}/trace", keys["admin"],
                         {"issued", "verified", "risk_decision", "redeemed", "cleared", "settled"})  # fmt: skip
    by_step = {s["step"]: s for s in trace["steps"]}
    assert by_step["verified"]["method"] == "CODE"
    assert by_step["redeemed"]["actor"] == f"merchant:{traced['merchant']}"
    assert by_step["cleared"]["rule"]["version"] == 1 and len(by_step["cleared"]["legs"]) == 3
    settled = [s for s in trace["steps"] if s["step"] == "settled"]
    assert {s["party"] for s in settled} == {
        "platform",
        f"merchant:{traced['merchant']}",
        f"brand:{traced['brand']}",
    }
    mine = next(s for s in settled if s["party"] == f"merchant:{traced['merchant']}")
    assert mine["run_id"] == f"stl_{traced['day'].replace('-', '')}"
    assert mine["transfer"]["channel_reference"]
    assert all(s["at"] for s in trace["steps"])


def test_a_merchant_traces_its_redemption_without_the_issue_and_others_settlement(api, traced):
    rid = traced["redemption"]["redemption_id"]
    trace = _trace_until(api, f"/v1/redemptions/{rid}/trace", traced["merchant_key"], {"verified", "settled"})
    assert "issued" not in {s["step"] for s in trace["steps"]}
    assert {s["party"] for s in trace["steps"] if s["step"] == "settled"} == {
        f"merchant:{traced['merchant']}"
    }


def test_the_coupon_trace_shows_its_redemption(api, keys, traced):
    trace = _trace_until(
        api, f"/v1/coupons/{traced['code']}/trace", keys["admin"], {"issued", "redeemed", "settled"}
    )
    assert [s["step"] for s in trace["steps"]][0] == "issued"


def test_the_redemptions_audit_entry_is_proven_in_the_signed_log_by_an_independent_checker(
    api, keys, traced, local_stack
):
    rid = traced["redemption"]["redemption_id"]
    trace = _trace_until(api, f"/v1/redemptions/{rid}/trace", traced["merchant_key"], {"redeemed"})
    (entry_id,) = next(s for s in trace["steps"] if s["step"] == "redeemed")["audit_entry_ids"]
    _sign(local_stack)
    answer = api.ok("GET", f"/v1/audit/entries/{entry_id}", traced["merchant_key"])
    assert answer["status"] == "SIGNED"
    assert answer["entry"]["fields"]["key"]["pk"] == f"REDEMPTION#{rid}"
    # the key pinned from KMS (the stack's output), not the one the answer carries
    kms = aws_client(local_stack, "kms")
    pinned = kms.get_public_key(KeyId=local_stack["outputs"]["AuditSigningKeyId"])["PublicKey"]
    check_independently(answer, pinned)
    other = api.call("GET", f"/v1/audit/entries/{entry_id}", keys["merchant:m-002"])
    assert other.status_code == 404
