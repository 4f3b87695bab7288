"""Settlement holds (issue #18 point 5): a REVIEW redemption's postings and a held party's wait out of
settlement until released, then the next run settles them; every hold and release is recorded."""

from __future__ import annotations

import json

import pytest

from coupons.data.risk_holds import RiskHoldStore
from coupons.domain import settlement as rules
from coupons.domain.ledger import Journal, Leg
from coupons.domain.risk.holds import HoldTerms
from coupons.services import risk_holds as hold_service
from coupons.services.risk_holds import ClaimFilter
from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_settlement_steps import MAIN_TABLE, moto_world

DAY, NEXT = "2026-03-09", "2026-03-10"


@pytest.fixture
def world():
    with moto_world() as made:
        made.holds = RiskHoldStore(made.ddb, MAIN_TABLE)
        made.steps = made.make_steps()
        made.steps._holds = lambda at: ClaimFilter(made.holds, at)  # as settlement_wiring makes it
        yield made


def post(world, journal_id, legs, *, day=DAY, **extra):
    world.ledger.post(
        Journal(
            journal_id=journal_id, source_id=journal_id.removeprefix("jnl_"), kind="REDEMPTION",
            currency="CNY", legs=tuple(Leg(a, x) for a, x in legs.items()), party_shares={},
        ),
        business_date=day, due_date=day, posted_at=f"{day}T12:00:00Z",
        extra={"redemption_id": journal_id.removeprefix("jnl_"), "merchant_id": "m1", **extra},
    )  # fmt: skip


def now(world) -> int:
    return int(world.clock().timestamp())


def test_a_review_redemptions_postings_wait_until_released_and_the_next_run_settles_them(world):
    post(world, "jnl_rdm_1", {"brand:b1": -500, "merchant:m1": 500})
    post(world, "jnl_rdm_2", {"brand:b1": -300, "merchant:m1": 300}, review_hold="review:rdm_2")

    world.settle(DAY)
    assert world.paid(rules.run_id(DAY)) == {"brand:b1": -500, "merchant:m1": 500}

    world.holds.release_review(
        {"review_hold": "review:rdm_2", "redemption_id": "rdm_2", "released_by": "admin", "released_at": now(world),
         "reason": "checked"},
        {"decision_id": "rsk_1", "event": "REVIEW", "at": now(world), "action": "RELEASE", "reason": "checked",
         "subjects": ["redemption:rdm_2"]},
    )  # fmt: skip
    world.clock.now = world.clock.now.replace(day=11)
    world.settle(NEXT)
    assert world.paid(rules.run_id(NEXT)) == {"brand:b1": -300, "merchant:m1": 300}
    assert all(p["settled"] for p in world.postings())


def test_a_held_partys_postings_wait_until_the_release_and_the_run_after_it_settles_them(world):
    post(world, "jnl_rdm_1", {"brand:b1": -500, "merchant:m1": 500})
    post(world, "jnl_rdm_2", {"brand:b1": -200, "merchant:m2": 200}, merchant_id="m2")
    hold = hold_service.hold(
        world.holds, HoldTerms(party="merchant:m1", reason="chargebacks"), by="finance", at=now(world) - 60
    )

    world.settle(DAY)
    assert world.paid(rules.run_id(DAY)) == {"brand:b1": -700, "merchant:m2": 200}
    held = [p for p in world.postings() if not p["settled"]]
    assert sorted(p["account"] for p in held) == ["merchant:m1"]

    world.clock.now = world.clock.now.replace(day=11)
    hold_service.release(world.holds, hold["hold_id"], by="admin", at=now(world) - 1)
    world.settle(NEXT)
    assert world.paid(rules.run_id(NEXT)) == {"merchant:m1": 500}


def test_a_claim_reads_the_holds_once_per_shard_not_per_page(world, monkeypatch):
    reads = []
    real = world.holds.holds
    monkeypatch.setattr(world.holds, "holds", lambda: reads.append(1) or real())
    post(world, "jnl_rdm_1", {"brand:b1": -500, "merchant:m1": 500})
    world.open(DAY)
    world.steps.claim(rules.run_id(DAY), DAY, 0)
    assert reads == [1]


def statement(world, party, day=DAY):
    found = world.statement(party, rules.run_id(day))
    return None if found is None else json.loads(found)


def test_a_runs_statement_shows_a_review_held_posting_as_waiting_with_why(world):
    post(world, "jnl_rdm_1", {"brand:b1": -500, "merchant:m1": 500})
    post(world, "jnl_rdm_2", {"brand:b1": -300, "merchant:m1": 300}, review_hold="review:rdm_2")

    world.settle(DAY)

    document = statement(world, "merchant:m1")
    assert document["totals"][0]["net"] == 500
    [held] = document["held"]
    assert (held["currency"], held["amount"], held["count"]) == ("CNY", 300, 1)
    [line] = held["lines"]
    assert (line["journal_id"], line["held_because"]) == ("jnl_rdm_2", {"review_hold": "review:rdm_2"})
    assert statement(world, "brand:b1")["held"][0]["amount"] == -300


def test_a_fully_held_party_gets_a_statement_with_net_0_and_its_held_section_and_no_transfer(world):
    post(world, "jnl_rdm_1", {"brand:b1": -500, "merchant:m1": 500})
    post(world, "jnl_rdm_2", {"brand:b1": -200, "merchant:m2": 200}, merchant_id="m2")
    post(world, "jnl_rdm_3", {"brand:b1": -100, "merchant:m2": 100}, merchant_id="m2")
    hold = hold_service.hold(
        world.holds, HoldTerms(party="merchant:m2", reason="chargebacks"), by="finance", at=now(world) - 60
    )

    world.settle(DAY)

    run = world.store.run(rules.run_id(DAY))
    assert world.paid(rules.run_id(DAY)) == {"brand:b1": -800, "merchant:m1": 500}
    assert run["totals"] == [
        {"currency": "CNY", "lines": 4, "net": -300, "payouts": 500, "payout_count": 1, "collections": 800,
         "collection_count": 1, "carried_forward": 0}
    ]  # fmt: skip
    document = statement(world, "merchant:m2")
    assert [(t["net"], t["transfer"], t["decision"]) for t in document["totals"]] == [(0, 0, "NONE")]
    assert document["lines"] == []
    [held] = document["held"]
    assert (held["amount"], held["count"]) == (300, 2)
    assert {line["journal_id"] for line in held["lines"]} == {"jnl_rdm_2", "jnl_rdm_3"}
    assert all(
        line["held_because"] == {"hold_id": hold["hold_id"], "reason": "chargebacks"} for line in held["lines"]
    )
    assert ",HELD," in world.statement("merchant:m2", rules.run_id(DAY), "csv")
    assert "held" not in statement(world, "merchant:m1")  # nothing of m1's waits


def test_a_retried_claim_does_not_count_held_lines_twice(world):
    post(world, "jnl_rdm_1", {"brand:b1": -500, "merchant:m1": 500})
    post(world, "jnl_rdm_2", {"brand:b1": -300, "merchant:m1": 300}, review_hold="review:rdm_2")
    run = rules.run_id(DAY)
    world.open(DAY)
    for _ in range(2):  # a redelivered claim shard: every shard claimed twice
        world.claim_all(DAY, run=run)
    world.settle(DAY)

    [held] = statement(world, "merchant:m1")["held"]
    assert (held["amount"], held["count"], len(held["lines"])) == (300, 1, 1)


def test_a_run_with_nothing_held_makes_no_request_for_held_lines(world, monkeypatch):
    calls = []
    monkeypatch.setattr(world.store.held, "hold_back", lambda *a, **k: calls.append("hold_back"))
    monkeypatch.setattr(world.store.held, "held", lambda *a, **k: calls.append("held"))
    post(world, "jnl_rdm_1", {"brand:b1": -500, "merchant:m1": 500})

    world.settle(DAY)

    assert calls == [] and "held" not in statement(world, "merchant:m1")


def test_a_held_line_stays_unclaimed_and_the_run_after_the_release_claims_it(world):
    post(world, "jnl_rdm_2", {"brand:b1": -300, "merchant:m1": 300}, review_hold="review:rdm_2")
    world.settle(DAY)
    assert [p["settled"] for p in world.postings()] == [False, False]
    assert "run_id" not in world.postings()[0]

    world.holds.release_review(
        {"review_hold": "review:rdm_2", "redemption_id": "rdm_2", "released_by": "admin", "released_at": now(world),
         "reason": "checked"},
        {"decision_id": "rsk_1", "event": "REVIEW", "at": now(world), "action": "RELEASE", "reason": "checked",
         "subjects": ["redemption:rdm_2"]},
    )  # fmt: skip
    world.clock.now = world.clock.now.replace(day=11)
    world.settle(NEXT)
    document = statement(world, "merchant:m1", NEXT)
    assert document["totals"][0]["net"] == 300 and "held" not in document


# -- over the API ---------------------------------------------------------------------------------


def test_a_hold_and_its_release_are_recorded_and_read_under_the_party(api, keys):
    answer = api.call(
        "POST",
        "/v1/risk/holds",
        api_key=keys["admin"],
        body={"party": "merchant:m-001", "reason": "chargebacks"},
    )
    assert answer.status == 201, answer.raw
    hold = answer.json
    assert (hold["party"], hold["status"], hold["held_by"]) == ("merchant:m-001", "HELD", "admin")
    path = f"/v1/risk/holds/{hold['hold_id']}/release"
    released = api.call("POST", path, api_key=keys["admin"], body={})
    assert released.status == 200, released.raw
    assert released.json["status"] == "RELEASED"
    again = api.call("POST", path, api_key=keys["admin"], body={})
    assert again.json["released_at"] == released.json["released_at"]
    decisions = api.call(
        "GET", "/v1/risk/decisions", api_key=keys["admin"], query={"subject": "merchant:m-001"}
    ).json["items"]
    # Newest first (a release in the same second as its hold sorts by decision id: either order).
    assert sorted((d["action"], d["hold_id"]) for d in decisions) == [
        ("HOLD", hold["hold_id"]),
        ("RELEASE", hold["hold_id"]),
    ]
    view = api.call("GET", "/v1/risk/holds", api_key=keys["admin"], query={"party": "merchant:m-001"})
    assert view.status == 200, view.raw
    assert [h["status"] for h in view.json["holds"]] == ["RELEASED"] and view.json["held"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"party": "m-001", "reason": "r"}, "party"),
        ({"party": "merchant:m-001"}, "reason"),
        ({"party": "merchant:m-001", "reason": ""}, "reason"),
        ({"party": "merchant:m-001", "reason": "r", "until": "x"}, "until"),
    ],
)
def test_a_hold_with_a_bad_field_is_a_400_naming_it_and_writes_nothing(api, keys, body, field):
    answer = api.call("POST", "/v1/risk/holds", api_key=keys["admin"], body=body)
    assert_problem(answer, 400, "validation_failed")
    assert field in [e["field"] for e in answer.json["errors"]]
    assert [i for i in api.items() if i["pk"]["S"].startswith("RISK")] == []


def test_releasing_an_unknown_hold_or_a_redemption_not_under_review_says_so(api, keys):
    from tests.integration.test_redemption_api import coupon, redeem

    assert_problem(api.call("POST", "/v1/risk/holds/hold_x/release", api_key=keys["admin"], body={}), 404,
                   "risk_hold_not_found", "hold_id")  # fmt: skip
    path = "/v1/risk/reviews/rdm_nope/release"
    assert_problem(
        api.call("POST", path, api_key=keys["admin"], body={"reason": "ok"}), 404, "redemption_not_found"
    )
    code, _ = coupon(api, keys)
    redemption_id = redeem(api, keys["merchant:m-001"], code).json["redemption_id"]
    answer = api.call(
        "POST", f"/v1/risk/reviews/{redemption_id}/release", api_key=keys["admin"], body={"reason": "ok"}
    )
    assert_problem(answer, 409, "not_under_review", "redemption_id")
    assert_problem(api.call("POST", "/v1/risk/reviews/x/release", api_key=keys["admin"], body={}), 400,
                   "validation_failed")  # fmt: skip


def test_a_reviewed_redemption_is_released_once_and_its_release_is_recorded(api, keys):
    from tests.integration.test_redemption_api import coupon, redeem
    from tests.integration.test_risk_api import rules, velocity

    rules(api, keys, velocity("busy-store", "store", "count", "hour", 1, "REVIEW", "more than 1 an hour"))
    first, _ = coupon(api, keys, user="u-1")
    second, _ = coupon(api, keys, user="u-2")
    redeem(api, keys["merchant:m-001"], first)
    redemption_id = redeem(api, keys["merchant:m-001"], second, order_id="o-2").json["redemption_id"]
    path = f"/v1/risk/reviews/{redemption_id}/release"
    first = api.call("POST", path, api_key=keys["admin"], body={"reason": "called the store"})
    assert first.status == 200, first.raw
    assert first.json["review_hold"] == f"review:{redemption_id}"
    second = api.call("POST", path, api_key=keys["admin"], body={"reason": "again"})
    assert second.json["reason"] == "called the store"
    [decision] = api.call(
        "GET", "/v1/risk/decisions", api_key=keys["admin"], query={"subject": f"redemption:{redemption_id}"}
    ).json["items"]
    assert (decision["action"], decision["by"]) == ("RELEASE", "admin")


def test_only_admin_and_finance_may_hold(api, keys):
    answer = api.call(
        "POST",
        "/v1/risk/holds",
        api_key=keys["merchant:m-001"],
        body={"party": "merchant:m-001", "reason": "x"},
    )
    assert answer.status == 403
