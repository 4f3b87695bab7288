"""The platform's commission (issue #14, point 4): an admin-only schedule, versioned and never
retroactive; clearing charges the version in force at the redemption's time in its own journal
(`merchant −c`, `platform +c`) and gives back a refund's part of it, never more than was charged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coupons.data.commission import CommissionStore
from tests.integration.conftest import TABLE
from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_clearing_handler import RDM, balances, store
from tests.integration.test_clearing_redelivery import batch, redemption, reversal

# 5 % of the order, at most 300 (the acceptance case's terms).
FIVE_PERCENT_CAPPED = {"basis": "ORDER", "bps": 500, "maximum": {"CNY": 300}}
PATH = "/v1/commission-schedule"


def in_force_since_january(aws, **version):
    """Seeds version 1 as a fixture does (the API never writes a start in the past)."""
    CommissionStore(aws, TABLE).put_version(
        {
            "version": 1,
            "default": FIVE_PERCENT_CAPPED,
            "effective_from": "2026-01-01T00:00:00Z",
            "created_at": "2026-01-01T00:00:00Z",
            "created_by": "admin:seed",
            **version,
        }
    )


def test_an_admin_adds_schedule_versions_forward_only_and_nobody_else_may(api, keys):
    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    added = api.call(
        "POST",
        PATH + "/versions",
        api_key=keys["admin"],
        headers={"Idempotency-Key": "k-commission-1"},
        body={"default": FIVE_PERCENT_CAPPED, "rules": [{"merchant_id": "m-001", "terms": {"basis": "DISCOUNT", "bps": 1000}}], "effective_from": later},
    )
    assert added.status == 201, added.raw
    assert [v["version"] for v in added.json["versions"]] == [1]
    replay = api.call(
        "POST",
        PATH + "/versions",
        api_key=keys["admin"],
        headers={"Idempotency-Key": "k-commission-1"},
        body={"default": FIVE_PERCENT_CAPPED, "rules": [{"merchant_id": "m-001", "terms": {"basis": "DISCOUNT", "bps": 1000}}], "effective_from": later},
    )
    assert replay.status == 201 and replay.json == added.json
    assert [v["version"] for v in api.call("GET", PATH, api_key=keys["admin"]).json["versions"]] == [1]

    before = api.items()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    refused = api.call("POST", PATH + "/versions", api_key=keys["admin"], body={"default": FIVE_PERCENT_CAPPED, "effective_from": past})
    assert_problem(refused, 400, "validation_failed", field="effective_from")
    bad = api.call("POST", PATH + "/versions", api_key=keys["admin"], body={"default": {"basis": "ORDER", "bps": 10_001}})
    assert bad.status == 400 and "default.bps" in bad.raw
    for who in ("issuer:brand-a", "merchant:m-001"):
        assert api.call("POST", PATH + "/versions", api_key=keys[who], body={"default": FIVE_PERCENT_CAPPED}).status == 403
        assert api.call("GET", PATH, api_key=keys[who]).status == 403
    assert api.items() == before


def test_a_redemption_is_charged_the_commission_in_force_and_refunds_give_it_back_in_parts(
    clearing, ledger, aws
):
    in_force_since_january(aws)
    # Order 10,000, discount 1,000 split 50/30/20 (fr_DEMO): platform −500, brand −300, merchant +800;
    # 5 % of 10,000 = 500, capped at 300: merchant −300, platform +300.
    assert clearing(store(aws, batch(redemption(RDM, 1000)))) == []
    journal = ledger.journal(f"jnl_{RDM}")
    assert {leg["account"]: leg["amount"] for leg in journal["legs"]} == {
        "platform": -200,
        "brand:brand-demo": -300,
        "merchant:m-001": 500,
    }
    assert journal["charges"]["commission"] | {"order_amount": 10_000} == {
        "amount": 300, "version": 1, "source": "default", "basis": "ORDER", "bps": 500, "order_amount": 10_000,
    }  # fmt: skip
    (merchant_posting,) = [
        i for i in aws.scan(TableName=TABLE)["Items"] if i["pk"]["S"].startswith("ENTRIES#merchant:m-001#")
    ]
    assert merchant_posting["commission"]["N"] == "300"  # gross 800 = amount 500 + commission 300

    # A refund of half the order gives back 500 of the discount (250 / 150 / 100) and 150 of the
    # commission (300 split over refunded 5,000 and kept 5,000).
    assert clearing(store(aws, batch(reversal(RDM, "rvs_HALF", 500)))) == []
    half = ledger.journal("jnl_rvs_HALF")
    assert {leg["account"]: leg["amount"] for leg in half["legs"]} == {
        "platform": 100,
        "brand:brand-demo": 150,
        "merchant:m-001": -250,
    }
    assert ledger.journal(f"jnl_{RDM}")["commission_given_back"] == 150
    # Refunding the rest gives back all that is left: every party at 0, no commission kept.
    assert clearing(store(aws, batch(reversal(RDM, "rvs_REST", 500)))) == []
    assert balances(ledger) == {"platform": 0, "brand:brand-demo": 0, "merchant:m-001": 0}
    assert ledger.journal(f"jnl_{RDM}")["commission_given_back"] == 300


def test_a_version_taking_effect_after_the_redemption_is_not_charged(clearing, ledger, aws):
    in_force_since_january(aws, effective_from="2026-11-24T03:00:01Z")  # the redemption: 03:00:00
    assert clearing(store(aws, batch(redemption(RDM, 1000)))) == []
    assert "charges" not in ledger.journal(f"jnl_{RDM}")
    assert balances(ledger)["merchant:m-001"] == 800
