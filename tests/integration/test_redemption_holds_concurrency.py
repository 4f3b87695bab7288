"""Redemption holds under concurrency (issue #15 point 3): 64 captures and voids of one hold → exactly one
outcome; holds racing redemptions of one coupon → one gets it; a capture racing the expiry sweep → one of
them; and a property over random hold / capture / void / expiry / redeem sequences on a gift card."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupons.data.campaigns import CampaignStore
from coupons.data.coupons import CouponStore
from coupons.data.idempotency import IdempotencyStore
from coupons.data.redemptions import RedemptionStore
from coupons.domain.errors import DomainError
from coupons.domain.principals import parse_principal
from coupons.services.redemption import Order, Proof, Redeemer
from tests.integration.conftest import TABLE, TENANT_KEY
from tests.integration.moto_threads import OneRequestAtATime
from tests.integration.test_issuance_api import active_campaign, issue
from tests.integration.test_redemption_holds_api import holds_over

RACERS = 64
MERCHANT = parse_principal("merchant:m-001")


def redeemer_over(client) -> Redeemer:
    return Redeemer(
        CampaignStore(client, TABLE),
        CouponStore(client, TABLE),
        RedemptionStore(client, TABLE),
        IdempotencyStore(client, TABLE),
        tenant_key=lambda: TENANT_KEY,
        time_zone="Asia/Shanghai",
        idempotency_ttl_seconds=3600,
        hold_seconds=600,
    )


def place(redeemer, code, i, *, capture=False, amount=None, order_amount=10000):
    order = Order("m-001", "s-1", order_amount, "CNY", order_id=f"o-{i}", amount=amount)
    _, answer, _ = redeemer.redeem(
        Proof(code=code), order, MERCHANT, idempotency_scope="m", idempotency_key=None,
        request_body={"i": i}, capture=capture,
    )  # fmt: skip
    return answer


def outcome(run) -> str:
    try:
        run()
        return "ok"
    except DomainError as refused:
        return refused.code


def test_64_concurrent_captures_and_voids_of_one_hold_have_exactly_one_outcome(api, keys):
    campaign_id = active_campaign(api, keys, per_user_limit=10)
    code = issue(api, keys["admin"], campaign_id, "u-1").json["code"]
    client = OneRequestAtATime(api.ddb)
    rid = place(redeemer_over(client), code, 0)["redemption_id"]
    holds = holds_over(client)

    def race(i: int) -> tuple[str, str]:
        if i % 2:
            return "capture", outcome(lambda: holds.capture(rid, MERCHANT, amount=None, idempotency_scope="m",
                                                             idempotency_key=None, request_body={"i": i}))  # fmt: skip
        return "void", outcome(
            lambda: holds.void(
                rid, MERCHANT, idempotency_scope="m", idempotency_key=None, request_body={"i": i}
            )
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(race, range(RACERS)))
    winners = [kind for kind, result in results if result == "ok"]
    assert len(winners) == 1, results
    assert {result for _, result in results if result != "ok"} == {"hold_not_active"}
    state = api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json["state"]
    redemptions = [
        i
        for i in api.items()
        if i["pk"]["S"] == f"REDEMPTION#{rid}"
        and i["sk"]["S"] == "REDEMPTION"
        and i["kind"]["S"] == "REDEMPTION"
    ]
    if winners == ["capture"]:
        assert state == "REDEEMED" and len(redemptions) == 1
    else:
        assert state == "ISSUED" and redemptions == []


def test_holds_racing_redemptions_of_one_coupon_let_exactly_one_in(api, keys):
    campaign_id = active_campaign(api, keys, per_user_limit=10)
    code = issue(api, keys["admin"], campaign_id, "u-1").json["code"]
    redeemer = redeemer_over(OneRequestAtATime(api.ddb))

    def race(i: int) -> str:
        return outcome(lambda: place(redeemer, code, i, capture=bool(i % 2)))

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(race, range(RACERS)))
    assert results.count("ok") == 1, results
    assert set(results) - {"ok"} <= {"coupon_held", "coupon_already_redeemed"}
    written = [i for i in api.items() if i["pk"]["S"].startswith("REDEMPTION#")]
    assert len(written) == 1


def test_a_capture_racing_the_expiry_sweep_is_one_or_the_other(api, keys):
    campaign_id = active_campaign(api, keys, per_user_limit=10, hold_seconds=60)
    code = issue(api, keys["admin"], campaign_id, "u-1").json["code"]
    client = OneRequestAtATime(api.ddb)
    rid = place(redeemer_over(client), code, 0)["redemption_id"]
    late = holds_over(client, later=61)  # the sweep and the capture both at a moment past the expiry

    def race(i: int):
        if i % 2:
            return outcome(lambda: late.capture(rid, MERCHANT, amount=None, idempotency_scope="m",
                                                idempotency_key=None, request_body={}))  # fmt: skip
        return late.release_due()["released"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(race, range(16)))
    assert sum(r for r in results if isinstance(r, int)) == 1  # released exactly once
    assert {r for r in results if isinstance(r, str)} == {"hold_expired"}  # never captured after expiry
    assert api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json["state"] == "ISSUED"


FACE = 10_000
steps = st.lists(
    st.tuples(
        st.sampled_from(["hold", "capture", "capture_part", "void", "expire", "redeem"]),
        st.integers(min_value=1, max_value=FACE + 500),
        st.integers(min_value=0, max_value=10**6),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
def test_a_gift_cards_balance_stays_within_0_and_its_face_and_available_is_balance_less_live_holds(
    api, keys, sequence
):
    campaign_id = active_campaign(
        api, keys, type="GIFT_CARD", amount=FACE, min_order=None, per_user_limit=1000
    )
    code = issue(api, keys["admin"], campaign_id, f"u-{random.getrandbits(40)}").json["code"]
    redeemer = redeemer_over(api.ddb)
    live: dict[str, int] = {}  # hold id → amount held
    expired_clock = holds_over(api.ddb, later=3600)
    holds = holds_over(api.ddb)
    for n, (action, amount, pick) in enumerate(sequence):
        ids = sorted(live)
        target = ids[pick % len(ids)] if ids else None
        if action in ("hold", "redeem"):
            try:
                answer = place(redeemer, code, n, capture=action == "redeem", order_amount=amount)
            except DomainError as refused:
                assert refused.code == "gift_card_balance_exhausted"
            else:
                if action == "hold":
                    live[answer["redemption_id"]] = answer["held_amount"]
        elif action == "expire":
            expired_clock.release_due()
            live.clear()
        elif target is not None:
            if action == "void":
                holds.void(target, MERCHANT, idempotency_scope="m", idempotency_key=None, request_body={})
            else:
                part = None if action == "capture" else 1 + pick % live[target]
                holds.capture(target, MERCHANT, amount=part, idempotency_scope="m", idempotency_key=None,
                              request_body={})  # fmt: skip
            del live[target]
        card = CouponStore(api.ddb, TABLE).get(code)
        assert 0 <= card["balance"] <= FACE
        assert card.get("available", card["balance"]) == card["balance"] - sum(live.values()), (sequence, n)
