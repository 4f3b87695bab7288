"""The anomaly detector on the stream (docs/risk.md "Anomaly detection"): each redemption updates its
merchant's and its campaign's baselines exactly once; a burst beyond a baseline is recorded (a decision
under the key) and, for a merchant, holds its settlement for review (a party hold; coupons.services.risk_holds)."""

from __future__ import annotations

from typing import Any

from coupons.data.anomaly import AlreadySeen, AnomalyStore, BaselineMoved
from coupons.domain.errors import Contention
from coupons.domain.risk import anomaly
from coupons.domain.risk.holds import HoldTerms, hold_record
from coupons.domain.times import parse

ATTEMPTS = 8
DETECTOR = "risk:anomaly-detector"  # who a flag's hold is held by


class Detector:
    def __init__(self, store: AnomalyStore, config: anomaly.DetectorConfig | None = None):
        self._store = store
        self._config = config or anomaly.DetectorConfig()

    def observe(self, redemption: dict[str, Any]) -> str:
        """'counted', 'flagged' or 'duplicate' (this record was counted before)."""
        source_id = redemption["redemption_id"]
        at = int(parse(redemption["redeemed_at"]).timestamp())
        discount = int(redemption.get("discount") or 0)
        keys = [f"merchant:{redemption['merchant_id']}", f"campaign:{redemption['campaign_id']}"]
        for _ in range(ATTEMPTS):
            if self._store.seen(source_id):
                return "duplicate"  # a shortcut: the transaction's marker is what makes it exact
            read = self._store.baselines(keys)
            states: dict[str, tuple[str, int]] = {}
            holds: list[tuple[dict, dict]] = []
            decisions: list[dict] = []
            for key in keys:
                text, version = read[key]
                tracker, flags = anomaly.observe(self._config, anomaly.tracker_from_json(text), at, discount)
                states[key] = (anomaly.tracker_to_json(tracker), version)
                if flags:
                    flagged = self._flagged(key, tracker, flags, at, source_id)
                    if key.startswith("merchant:"):
                        holds.append(flagged)
                    else:
                        decisions.append(flagged[1])
            try:
                self._store.commit(source_id, states, holds, decisions, at=at)
            except AlreadySeen:
                return "duplicate"
            except BaselineMoved:
                continue
            return "flagged" if holds or decisions else "counted"
        raise Contention(field="redemption_id")

    def _flagged(self, key: str, tracker: anomaly.Tracker, flags, at: int, source_id: str):
        """A flag's hold (for a merchant; None for a campaign, whose flag is recorded, not held) and its
        record; ids derive from the key and the interval, so a retried read computes the same ones."""
        reason = anomaly.flag_reason(key, flags)[:500]
        slot = tracker.slot
        decision = {
            "decision_id": f"rsk_anomaly_{slot}",
            "event": "ANOMALY",
            "at": at,
            "action": "FLAG",
            "reason": reason,
            "by": DETECTOR,
            "source_id": source_id,
            "series": ",".join(f.series for f in flags),
            "statistic": "; ".join(f"z={f.z:.2f} x={f.value:.2f} mean={f.mean:.2f}" for f in flags),
            "subjects": [key],
        }
        if not key.startswith("merchant:"):
            return None, decision
        hold = hold_record(
            HoldTerms(party=key, reason=reason),
            by=DETECTOR,
            at=at,
            hold_id_=f"hold_anomaly_{key.replace(':', '_')}_{slot}",
        )
        return hold, decision | {"action": "HOLD", "hold_id": hold["hold_id"], "party": key}
