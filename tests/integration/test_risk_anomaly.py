"""The anomaly detector on the stream (issue #18 point 7): each redemption counted once in its merchant's
and campaign's baselines, even redelivered; a burst records a decision and holds the merchant."""

from __future__ import annotations

from datetime import UTC, datetime

from coupons.data.anomaly import AnomalyStore
from coupons.data.risk import RiskStore
from coupons.data.risk_holds import RiskHoldStore
from coupons.domain.risk import anomaly
from coupons.services.anomaly import Detector
from tests.integration.conftest import TABLE

T0 = 1_767_225_600


def redemption(n: int, at: int, merchant="m-1", discount=500) -> dict:
    return {
        "redemption_id": f"rdm_{n}", "merchant_id": merchant, "campaign_id": "cmp-1", "discount": discount,
        "redeemed_at": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
    }  # fmt: skip


def baseline(aws, key):
    state, version = AnomalyStore(aws, TABLE).baselines([key])[key]
    return anomaly.tracker_from_json(state), version


def test_a_redelivered_record_is_counted_once_in_each_baseline(aws):
    detector = Detector(AnomalyStore(aws, TABLE))
    assert detector.observe(redemption(1, T0)) == "counted"
    before = baseline(aws, "merchant:m-1"), baseline(aws, "campaign:cmp-1")
    assert detector.observe(redemption(1, T0)) == "duplicate"
    assert (baseline(aws, "merchant:m-1"), baseline(aws, "campaign:cmp-1")) == before
    assert before[0][0].count == 1 and before[0][1] == 1


def test_a_burst_beyond_the_merchants_baseline_is_recorded_and_holds_its_settlement(aws):
    detector = Detector(AnomalyStore(aws, TABLE))
    n = 0
    for interval in range(20):  # two redemptions per 5 minutes: the baseline
        for k in range(2):
            n += 1
            assert detector.observe(redemption(n, T0 + interval * 300 + k)) == "counted"
    outcomes = []
    for k in range(30):  # then thirty in one interval
        n += 1
        outcomes.append(detector.observe(redemption(n, T0 + 20 * 300 + k)))
    assert "flagged" in outcomes and outcomes.count("flagged") <= 2  # once per key and interval
    [hold] = RiskHoldStore(aws, TABLE).holds()
    assert (hold["party"], hold["status"], hold["held_by"]) == (
        "merchant:m-1",
        "HELD",
        "risk:anomaly-detector",
    )
    decisions, _ = RiskStore(aws, TABLE).decisions("merchant:m-1", limit=10, cursor=None)
    assert [(d["event"], d["action"], d["hold_id"]) for d in decisions] == [
        ("ANOMALY", "HOLD", hold["hold_id"])
    ]
    assert "rate" in decisions[0]["series"]
