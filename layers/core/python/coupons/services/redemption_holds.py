"""Redemption holds (authorizations, 预占): capture, void, and the release of expired holds.

A hold is placed by a redemption with "capture": false (services/redemption.py: the same verification,
risk rules and single transaction, writing the item at the redemption's key with kind HOLD, its id a
sealed `hld_…` id: coupons.domain.hold_ids). Here:

- capture: the hold becomes the redemption in place (kind REDEMPTION, so clearing posts it, once, at the
  captured amount); a gift card's hold may be captured in part, the rest is available again;
- void: the hold is released (a single-use coupon is ISSUED again, a gift card's amount available);
- release_due: holds whose time is up are released (the every-minute sweep, functions/hold_expiry).

A merchant's capture or void is ONE TransactWriteItems carrying the Idempotency-Key's completion, with no
read first: the hold's id carries what it writes (the code, the coupon type, currency, amount held,
expiry), and its conditions prove the rest (a hold, HELD, not expired, this merchant's). Off that path
the hold is read first (one GetItem), then the same transaction: an id that does not unseal (a redemption
captured when made, an id sealed under a key the tenant no longer uses), an admin's call (the history
event names the hold's merchant), or a failed condition (ALL_OLD says why: hold_expired,
hold_not_active, not_a_hold, another merchant's 404). The hold's `hold_status = HELD` condition lets
exactly one of any racing captures, voids and releases in, and `hold_expires_at > now` refuses a capture
once the hold's time is up, whether or not the sweep has run yet.

Both paths answer the same shape, what the request and the id know (`ended`); GET /v1/redemptions/{id}
has the rest (campaign, parties, order).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from coupons.data.coupons import WriteConflict
from coupons.data.idempotency import IdempotencyRecordExists, IdempotencyStore
from coupons.data.redemption_holds import CardMoved, HoldEnd, HoldMoved, HoldRef, RedemptionHoldStore
from coupons.data.redemptions import IdempotencyWrite
from coupons.domain import hold_ids
from coupons.domain import idempotency as idempotency_rules
from coupons.domain import redemption_holds as rules
from coupons.domain.coupons import iso
from coupons.domain.errors import Conflict, Contention
from coupons.domain.principals import Principal, Role
from coupons.domain.redemption import business_date
from coupons.services.reversals import RedemptionNotFound, may_see

ATTEMPTS = 12
# What a redemption id can look like: a redemption's `rdm_…`, a hold's sealed `hld_…`. Anything else is
# no redemption (404), found without a read.
_ID = re.compile(r"(rdm|hld)_[A-Za-z0-9_-]+")


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
        tenant_key: Callable[[], bytes] | None = None,
    ):
        """`tenant_key`: the key hold ids are sealed under (None: every hold is read first)."""
        self._holds = holds
        self._idempotency = idempotency
        self._time_zone = time_zone
        self._ttl = idempotency_ttl_seconds
        self._clock = clock
        self._tenant_key = tenant_key
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
        """(200, the redemption the hold became, replayed): all of the hold, or `amount` of a gift card's."""
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
        if len(redemption_id) > hold_ids.MAX_CHARS or not _ID.fullmatch(redemption_id):
            raise RedemptionNotFound(field="redemption_id")  # no such id can exist: nothing read
        action = "capture" if status == rules.CAPTURED else "void"
        fingerprint = idempotency_rules.fingerprint(
            "POST", f"/v1/redemptions/{redemption_id}/{action}", request_body
        )
        # The happy path: a merchant's call on a hold id that unseals (no read). Otherwise read the hold.
        facts = None
        if principal.role is Role.MERCHANT and self._tenant_key is not None:
            facts = hold_ids.read(self._tenant_key(), redemption_id)
        if facts is not None:
            # Not read: the condition proves the hold is this merchant's, so the event can name it.
            hold, merchant, named = (
                HoldRef.sealed(redemption_id, facts),
                principal.merchant_id,
                principal.merchant_id,
            )
        else:
            found = self._read(redemption_id, principal, scope, key, fingerprint)
            hold, merchant, named = HoldRef.of(found), None, found["merchant_id"]
        drains = False
        for attempt in range(ATTEMPTS):
            instant = self._clock()
            moment = datetime.fromtimestamp(instant, UTC)
            now_iso = iso(moment)
            try:
                captured = (
                    rules.capture_amount(hold.held_amount, amount, gift_card=hold.gift_card)
                    if status == rules.CAPTURED
                    else 0
                )
            except Conflict:
                # A retry with this key whose body changed is told so (or gets its answer) first.
                self._replay_if_done(scope, key, fingerprint)
                raise
            end, answer = self._ending(hold, status, captured, drains, moment, str(principal), named)
            body = json.dumps(answer)
            write = None
            if key is not None:
                write = IdempotencyWrite(
                    scope=scope, key=key, fingerprint=fingerprint, status=200, body=body,
                    now=int(instant), expires_at=int(instant) + self._ttl,
                )  # fmt: skip
            try:
                self._holds.end(hold, end, merchant=merchant, idempotency=write)
                return 200, answer, False
            except IdempotencyRecordExists as existing:
                replay = idempotency_rules.on_existing(existing.record, fingerprint)
                return replay.status, replay.body, True
            except HoldMoved as moved:
                old = moved.hold
                if merchant is not None:
                    # Not read first: what the item is now says why (ALL_OLD).
                    _refuse_unless_a_hold(old, principal)
                    if _live(old, now_iso) and "held_order_gsi1pk" not in old:
                        # A hold placed without an order: its capture has no order index to move into
                        # gsi1, so it goes as read (the same transaction, from the item).
                        hold, merchant = HoldRef.of(old), None
                        continue
                # Captured, voided or released by another request, or its time ran out.
                self._replay_if_done(scope, key, fingerprint)
                raise rules.refusal(old, now_iso=now_iso) from None
            except CardMoved as moved:
                # Guessed wrong whether this capture drains the card: the card says.
                drains = moved.coupon.get("balance") == captured
            except WriteConflict:
                time.sleep(self._rng.uniform(0, 0.01 * (attempt + 1)))
        raise Contention(field="redemption_id")

    def _read(
        self, redemption_id: str, principal: Principal, scope: str, key: str | None, fingerprint: str
    ) -> dict[str, Any]:
        """The read path: the item as it is (one GetItem), refused here unless it is a live hold."""
        found = self._holds.hold_of(redemption_id)
        _refuse_unless_a_hold(found, principal)
        now_iso = iso(datetime.fromtimestamp(self._clock(), UTC))
        if not _live(found, now_iso):
            self._replay_if_done(scope, key, fingerprint)
            raise rules.refusal(found, now_iso=now_iso)
        return found

    def _ending(
        self, hold: HoldRef, status: str, captured: int, drains: bool, moment: datetime, by: str,
        merchant: str | None,
    ) -> tuple[HoldEnd, dict[str, Any]]:  # fmt: skip
        now_iso = iso(moment)
        rid, held = hold.redemption_id, hold.held_amount
        event = {"at": now_iso, "redemption_id": rid, "merchant_id": merchant, "by": by}
        known = {
            "redemption_id": rid,
            "status": status,
            "code": hold.code,
            "coupon_type": hold.coupon_type,
            "currency": hold.currency,
            "held_amount": held,
            "hold_expires_at": hold.hold_expires_at,
        }
        if status != rules.CAPTURED:
            # A hold's discount is the amount held (it took nothing): all of it is released.
            answer = known | {"discount": held, "released_amount": held, "closed_at": now_iso}
            end = HoldEnd(status, now_iso, event | {"event": f"HOLD_{status}", "amount": held})
            return end, _present(answer)
        # The redemption as if made now, at the captured amount, on the business date of the capture:
        # what clearing posts (it never reads back).
        state_after = "REDEEMED" if drains or not hold.gift_card else "PARTIALLY_USED"
        day = business_date(moment, self._time_zone)
        answer = known | {
            "discount": captured,
            "captured_amount": captured,
            "released_amount": held - captured,
            "redeemed_at": now_iso,
            "business_date": day,
            "coupon_state_after": state_after,
            "closed_at": now_iso,
        }
        end = HoldEnd(
            rules.CAPTURED,
            now_iso,
            event | {"event": "CAPTURED", "amount": captured},
            captured=captured,
            drains=drains,
            business_date=day,
            coupon_state_after=state_after,
        )
        return end, _present(answer)

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
        ref = HoldRef.of(hold)
        end, _ = self._ending(
            ref, rules.EXPIRED, 0, False, now, "system:hold-expiry", hold.get("merchant_id")
        )
        for attempt in range(ATTEMPTS):
            try:
                self._holds.end(ref, end)
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


def _refuse_unless_a_hold(found: dict[str, Any] | None, principal: Principal) -> None:
    """404 for no item or another merchant's (as for any redemption); 409 not_a_hold for a redemption
    captured when made (kind REDEMPTION with no hold_status: it never was a hold)."""
    if not found or not may_see(found, principal):
        raise RedemptionNotFound(field="redemption_id")
    if found.get("kind") != "HOLD" and "hold_status" not in found:
        raise rules.NotAHold(field="redemption_id")


def _live(hold: dict[str, Any], now_iso: str) -> bool:
    return hold.get("hold_status") == rules.HELD and hold.get("hold_expires_at", "") > now_iso


def _present(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if v is not None}
