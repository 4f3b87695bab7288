"""Redemption holds (authorizations, 预占): capture, void, and the release of expired holds.

A hold is placed by a redemption with "capture": false (services/redemption.py: the same verification,
risk rules and single transaction, writing a HOLD item instead of the REDEMPTION clearing takes). Here:

- capture: the hold becomes a redemption (the REDEMPTION item is put, so clearing posts it, once, at the
  captured amount); a gift card's hold may be captured in part, the rest is available again;
- void: the hold is released (a single-use coupon is ISSUED again, a gift card's amount available);
- release_due: holds whose time is up are released (the every-minute sweep, functions/hold_expiry).

Each is one read of the hold (a Query of its partition) and ONE TransactWriteItems carrying the
Idempotency-Key's completion; the hold's `hold_status = HELD` condition lets exactly one of any racing
captures, voids and releases in, and a capture's `hold_expires_at > now` refuses it once the hold's time is
up, whether or not the sweep has run yet.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from coupons.data.coupons import WriteConflict
from coupons.data.idempotency import IdempotencyRecordExists, IdempotencyStore
from coupons.data.redemption_holds import CardMoved, HoldEnd, HoldMoved, RedemptionHoldStore
from coupons.data.redemptions import IdempotencyWrite
from coupons.domain import idempotency as idempotency_rules
from coupons.domain import redemption_holds as rules
from coupons.domain.campaigns import CampaignType
from coupons.domain.coupons import iso
from coupons.domain.errors import Contention
from coupons.domain.principals import Principal, Role
from coupons.domain.redemption import business_date
from coupons.services.reversals import RedemptionNotFound, may_see

ATTEMPTS = 12
# What the hold item holds that its redemption does not.
_HOLD_ONLY = ("hold_status", "captured_amount", "closed_at")


def hold_answer(answer: dict[str, Any], moment: datetime, seconds: int, *, gift: bool) -> dict[str, Any]:
    """A redemption's answer as the hold it is: HELD until hold_expires_at, nothing redeemed yet. A gift
    card's hold reads nothing (one request), so it states no balance."""
    held = {
        k: v for k, v in answer.items() if k not in ("redeemed_at", "balance_after", "coupon_state_after")
    }
    if not gift:
        held["coupon_state_after"] = rules.HELD
    return held | {
        "status": rules.HELD,
        "held_amount": answer["discount"],
        "held_at": iso(moment),
        "hold_expires_at": iso(rules.expires_at(moment, seconds)),
    }


class RedemptionHolds:
    def __init__(
        self,
        holds: RedemptionHoldStore,
        idempotency: IdempotencyStore,
        *,
        time_zone: str,
        idempotency_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ):
        self._holds = holds
        self._idempotency = idempotency
        self._time_zone = time_zone
        self._ttl = idempotency_ttl_seconds
        self._clock = clock
        self._rng = random.SystemRandom()

    def capture(
        self,
        redemption_id: str,
        principal: Principal,
        *,
        amount: int | None,
        idempotency_scope: str,
        idempotency_key: str | None,
        request_body: Any,
    ) -> tuple[int, dict[str, Any], bool]:
        """(200, the redemption, replayed): all of the hold, or `amount` of a gift card's hold."""
        try:
            return self._end(
                redemption_id,
                principal,
                rules.CAPTURED,
                amount,
                idempotency_scope,
                idempotency_key,
                request_body,
            )
        except _Replayed as replayed:
            return replayed.status, replayed.body, True

    def void(
        self,
        redemption_id: str,
        principal: Principal,
        *,
        idempotency_scope: str,
        idempotency_key: str | None,
        request_body: Any,
    ) -> tuple[int, dict[str, Any], bool]:
        """(200, the hold released, replayed)."""
        try:
            return self._end(
                redemption_id, principal, rules.VOIDED, None, idempotency_scope, idempotency_key, request_body
            )
        except _Replayed as replayed:
            return replayed.status, replayed.body, True

    def _end(
        self,
        redemption_id: str,
        principal: Principal,
        status: str,
        amount: int | None,
        scope: str,
        key: str | None,
        request_body: Any,
    ) -> tuple[int, dict[str, Any], bool]:
        principal.require(Role.ADMIN, Role.MERCHANT)
        if key is not None:
            idempotency_rules.check_key(key)
        action = "capture" if status == rules.CAPTURED else "void"
        fingerprint = idempotency_rules.fingerprint(
            "POST", f"/v1/redemptions/{redemption_id}/{action}", request_body
        )
        hold, redeemed = self._holds.hold_of(redemption_id)
        if hold is None or not may_see(hold, principal):
            if redeemed and hold is None:
                raise rules.NotAHold(field="redemption_id")
            raise RedemptionNotFound(field="redemption_id")
        gift = hold.get("coupon_type") == CampaignType.GIFT_CARD
        drains = False
        for attempt in range(ATTEMPTS):
            instant = self._clock()
            moment = datetime.fromtimestamp(instant, UTC)
            now_iso = iso(moment)
            if hold.get("hold_status") != rules.HELD or hold["hold_expires_at"] <= now_iso:
                self._replay_if_done(scope, key, fingerprint)
                raise rules.refusal(hold, now_iso=now_iso)
            # After the state: a retry of a capture that committed is answered (or its key's reuse
            # refused) before its amount is looked at again.
            captured = (
                rules.capture_amount(hold["held_amount"], amount, gift_card=gift)
                if status == rules.CAPTURED
                else 0
            )
            end, answer = self._ending(hold, status, captured, drains, moment, str(principal))
            body = json.dumps(answer)
            write = None
            if key is not None:
                write = IdempotencyWrite(
                    scope=scope, key=key, fingerprint=fingerprint, status=200, body=body,
                    now=int(instant), expires_at=int(instant) + self._ttl,
                )  # fmt: skip
            try:
                self._holds.end(hold, end, idempotency=write)
                return 200, answer, False
            except IdempotencyRecordExists as existing:
                replay = idempotency_rules.on_existing(existing.record, fingerprint)
                return replay.status, replay.body, True
            except HoldMoved as moved:
                # Captured, voided or released by another request, or its time ran out.
                self._replay_if_done(scope, key, fingerprint)
                raise rules.refusal(moved.hold or hold, now_iso=now_iso) from None
            except CardMoved as moved:
                # Guessed wrong whether this capture drains the card: the card says.
                drains = moved.coupon.get("balance") == captured
            except WriteConflict:
                time.sleep(self._rng.uniform(0, 0.01 * (attempt + 1)))
        raise Contention(field="redemption_id")

    def _ending(
        self, hold: dict[str, Any], status: str, captured: int, drains: bool, moment: datetime, by: str
    ) -> tuple[HoldEnd, dict[str, Any]]:
        now_iso = iso(moment)
        rid, held = hold["redemption_id"], hold["held_amount"]
        event = {"at": now_iso, "redemption_id": rid, "merchant_id": hold.get("merchant_id"), "by": by}
        public = {k: v for k, v in hold.items() if k not in ("kind", "holder", *_HOLD_ONLY)}
        if status != rules.CAPTURED:
            answer = public | {"status": status, "released_amount": held, "closed_at": now_iso}
            end = HoldEnd(status, now_iso, event | {"event": f"HOLD_{status}", "amount": held})
            return end, answer
        gift = hold.get("coupon_type") == CampaignType.GIFT_CARD
        # The redemption as if made now, at the captured amount: what clearing posts (it never reads
        # back), on the business date of the capture.
        redemption = {k: v for k, v in hold.items() if k not in _HOLD_ONLY} | {
            "kind": "REDEMPTION",
            "discount": captured,
            "redeemed_at": now_iso,
            "business_date": business_date(moment, self._time_zone),
            "coupon_state_after": "REDEEMED" if drains or not gift else "PARTIALLY_USED",
        }
        answer = {k: v for k, v in redemption.items() if k not in ("kind", "holder")} | {
            "status": rules.CAPTURED,
            "captured_amount": captured,
            "released_amount": held - captured,
        }
        end = HoldEnd(
            rules.CAPTURED,
            now_iso,
            event | {"event": "CAPTURED", "amount": captured},
            captured=captured,
            redemption=redemption,
            drains=drains,
        )
        return end, answer

    def _replay_if_done(self, scope: str, key: str | None, fingerprint: str) -> None:
        """A retry of a capture or void that committed (its answer lost) gets that answer, not a 409."""
        if key is None:
            return
        record = self._idempotency.get(scope, key)
        if record is not None and record.get("expires_at", 0) >= int(self._clock()):
            replay = idempotency_rules.on_existing(record, fingerprint)
            raise _Replayed(replay.status, replay.body)

    # -- expiry ------------------------------------------------------------------------------

    def release_due(self, *, budget_seconds: float = 50.0, batch: int = 100) -> dict[str, int]:
        """Releases every hold whose time is up (hold_expires_at <= now), each exactly once: the release's
        condition is still HELD and due, so a capture or void that got in first wins and a hold listed
        twice (the index is eventually consistent, sweeps may overlap) is released once. Stops after
        `budget_seconds` (the next minute's sweep goes on). {"released", "skipped"}."""
        started = self._clock()
        released = skipped = 0
        while self._clock() - started < budget_seconds:
            now = datetime.fromtimestamp(self._clock(), UTC)
            due = self._holds.due(iso(now), limit=batch)
            for hold in due:
                if self._release(hold, now):
                    released += 1
                else:
                    skipped += 1
            if len(due) < batch:
                break
        return {"released": released, "skipped": skipped}

    def _release(self, hold: dict[str, Any], now: datetime) -> bool:
        end, _ = self._ending(hold, rules.EXPIRED, 0, False, now, "system:hold-expiry")
        for attempt in range(ATTEMPTS):
            try:
                self._holds.end(hold, end)
                return True
            except HoldMoved:
                return False  # captured, voided or released already (or not due: a stale index entry)
            except WriteConflict:
                time.sleep(self._rng.uniform(0, 0.01 * (attempt + 1)))
        return False  # left HELD and in the index: the next sweep releases it


class _Replayed(Exception):
    def __init__(self, status: int, body: Any):
        super().__init__("replayed")
        self.status, self.body = status, body
