"""A velocity limit holds under concurrency: the counter's condition and the redemption are one
transaction, so exactly `threshold` redemptions get in however many race (issue #18 acceptance)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from coupons.data.campaigns import CampaignStore
from coupons.data.coupons import CouponStore
from coupons.data.idempotency import IdempotencyStore
from coupons.data.redemptions import RedemptionStore
from coupons.data.risk import RiskStore
from coupons.domain.principals import parse_principal
from coupons.domain.risk.errors import RiskDenied
from coupons.services.redemption import Order, Proof, Redeemer
from coupons.services.risk import RuleSets, Subjects
from tests.integration.conftest import TABLE, TENANT_KEY
from tests.integration.moto_threads import OneRequestAtATime
from tests.integration.test_issuance_api import active_campaign, issue
from tests.integration.test_risk_api import rules, velocity

RACERS = 64
LIMIT = 5


def redeemer_over(client) -> Redeemer:
    return Redeemer(
        CampaignStore(client, TABLE),
        CouponStore(client, TABLE),
        RedemptionStore(client, TABLE),
        IdempotencyStore(client, TABLE),
        tenant_key=lambda: TENANT_KEY,
        time_zone="Asia/Shanghai",
        idempotency_ttl_seconds=3600,
        risk_rules=RuleSets(RiskStore(client, TABLE)),
    )


def test_64_concurrent_redemptions_against_a_velocity_limit_of_5_let_exactly_5_in(api, keys):
    rules(
        api,
        keys,
        velocity("brushing", "device", "count", "day", LIMIT, reason="more than 5 a day from one device"),
    )
    campaign_id = active_campaign(api, keys, per_user_limit=100, total_quantity=1000)
    codes = [issue(api, keys["admin"], campaign_id, f"u-{i}").json["code"] for i in range(RACERS)]
    redeemer = redeemer_over(OneRequestAtATime(api.ddb))
    merchant = parse_principal("merchant:m-001")

    def attempt(i: int) -> str:
        order = Order("m-001", "s-1", 10000, "CNY", order_id=f"o-{i}")
        try:
            redeemer.redeem(
                Proof(code=codes[i]),
                order,
                merchant,
                idempotency_scope="m",
                idempotency_key=None,
                request_body={"i": i},
                subjects=Subjects(device_id="d-farm"),
            )
            return "allowed"
        except RiskDenied as denied:
            assert denied.decision.rule_id == "brushing"
            return "denied"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(RACERS)))
    assert outcomes.count("allowed") == LIMIT and outcomes.count("denied") == RACERS - LIMIT
    redeemed = [i for i in api.items() if i["pk"]["S"].startswith("REDEMPTION#")]
    assert len(redeemed) == LIMIT
    counter = [i for i in api.items() if i["pk"]["S"] == "RISKCTR#device#d-farm"]
    assert [c["n"]["N"] for c in counter] == [str(LIMIT)]  # the denied ones were never counted
