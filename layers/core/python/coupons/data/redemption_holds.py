"""Redemption holds (authorizations): what a hold does to its coupon, and the single transaction that
captures, voids or releases (expiry) one. The hold itself is placed by the redemption's own transaction
(data/redemptions.py, with `hold_coupon` below): see docs/redemption.md "RedemptionHolds".

Every end of a hold is ONE TransactWriteItems whose first condition is the hold's `hold_status = HELD`:
of any number of captures, voids and expiry releases racing on one hold exactly one commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import TransactWriteError

from coupons.data.coupons import WriteConflict, history_write
from coupons.data.idempotency import IdempotencyRecordExists, completed_write, existing_record
from coupons.data.models.base import Transaction
from coupons.data.models.coupons import COUPON_SK, Coupon, HistoryEvent, coupon_pk
from coupons.data.models.idempotency import IdempotencyRecord
from coupons.data.models.orders import order_index
from coupons.data.models.redemptions import (
    HOLD_SK,
    LIVE_HOLD_SHARDS,
    REDEMPTION_SK,
    Redemption,
    RedemptionHold,
    RedemptionPartition,
    live_hold_partition,
    pending_index,
    redemption_pk,
)
from coupons.domain.redemption_holds import CAPTURED, HELD

if TYPE_CHECKING:
    from coupons.data.redemptions import CouponChange, IdempotencyWrite

_HOLD, _COUPON, _REDEMPTION, _IDEMPOTENCY = "hold", "coupon", "redemption", "idempotency"
# A Query of a live-holds shard reads at most this many holds at once.
LIVE_PAGE = 25


class HoldMoved(Exception):
    """The hold is not HELD any more, or its time ran out (captures) / has not (expiry); `hold` is it now."""

    def __init__(self, hold: dict[str, Any]):
        super().__init__("hold moved")
        self.hold = hold


class CardMoved(Exception):
    """A gift card's capture guessed wrong whether it drains the card (`coupon`: the card as it is)."""

    def __init__(self, coupon: dict[str, Any]):
        super().__init__("card moved")
        self.coupon = coupon


def hold_coupon(C: type[Coupon], condition: Any, change: CouponChange) -> tuple[Any, list]:
    """A hold's coupon condition and actions, in the redemption's transaction (one request).

    Single use: only an unused coupon is HELD, by this hold's id. A gift card: `held` of it is
    reserved out of `available` (balance − live holds), which the card gets at its first hold — no read
    first: the condition says there is enough, the update takes it."""
    if change.balance_before is None and change.held is None:
        condition &= C.state == "ISSUED"
        return condition, [C.state.set(HELD), C.redemption_id.set(change.redemption_id)]
    held = change.held
    # Enough not held yet: the card's available amount, or its whole balance if it never had a hold.
    enough = (C.available >= held) | (C.available.does_not_exist() & (C.balance >= held))
    condition &= C.state.is_in("ISSUED", "PARTIALLY_USED") & enough
    return condition, [C.available.set((C.available | C.balance) - held)]


@dataclass(frozen=True)
class HoldEnd:
    """How a hold ends: CAPTURED (`captured` of it), VOIDED or EXPIRED, at `now` (ISO UTC)."""

    status: str
    now: str
    event: dict[str, Any]  # the coupon's history event
    captured: int = 0
    redemption: dict[str, Any] | None = None  # CAPTURED: the redemption clearing takes
    drains: bool = False  # a gift card's capture that leaves its balance at 0


class RedemptionHoldStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._hold = RedemptionHold.bound(client, table_name)
        self._redemption = Redemption.bound(client, table_name)
        self._partition = RedemptionPartition.bound(client, table_name)
        self._coupon = Coupon.bound(client, table_name)
        self._event = HistoryEvent.bound(client, table_name)
        self._idempotency = IdempotencyRecord.bound(client, table_name)

    def hold_of(self, redemption_id: str) -> tuple[dict[str, Any] | None, bool]:
        """(the hold, whether a REDEMPTION item exists): one strongly consistent Query of the partition's
        HOLD and REDEMPTION items (its reversals sort after them and are not read)."""
        found = self._partition.query(
            redemption_pk(redemption_id),
            self._partition.sk <= REDEMPTION_SK,
            consistent_read=True,
        )
        items = {i.sk: i for i in found}
        hold = items.get(HOLD_SK)
        return (hold.record() if hold is not None else None), REDEMPTION_SK in items

    def end(self, hold: dict[str, Any], end: HoldEnd, *, idempotency: IdempotencyWrite | None = None) -> None:
        """Captures, voids or releases `hold` in ONE TransactWriteItems, or raises why not:
        IdempotencyRecordExists (the key answered before), HoldMoved, CardMoved, WriteConflict.

        - Update the hold: hold_status, closed_at, out of the live holds' index
        - capture: Put the REDEMPTION item (what clearing posts, at the captured amount)
        - Update the coupon: REDEEMED / back to ISSUED; a gift card's balance and available amount
        - Put the coupon's history event; the Idempotency-Key's COMPLETED record when a key was sent"""
        H, C = self._hold, self._coupon
        rid = hold["redemption_id"]
        tx = Transaction(self._client)
        actions = [
            H.hold_status.set(end.status),
            H.closed_at.set(end.now),
            H.gsi1pk.remove(),
            H.gsi1sk.remove(),
        ]
        if end.status == CAPTURED:
            actions.append(H.captured_amount.set(end.captured))
            # Still HELD (exactly one of racing captures, voids and releases gets in) and not past its
            # time: a capture is refused from hold_expires_at on, whether or not the sweep has run.
            condition = (H.hold_status == HELD) & (H.hold_expires_at > end.now)
        elif end.status == "VOIDED":
            # Still HELD and not past its time (past it, the release is the sweep's: hold_expired).
            condition = (H.hold_status == HELD) & (H.hold_expires_at > end.now)
        else:
            # The sweep: still HELD (a capture or void that got in first wins) and its time is up.
            condition = (H.hold_status == HELD) & (H.hold_expires_at <= end.now)
        tx.update(H(redemption_pk(rid), HOLD_SK), actions, condition, return_values="ALL_OLD", tag=_HOLD)
        if end.redemption is not None:
            item = self._redemption.from_record(
                end.redemption,
                pk=redemption_pk(rid),
                sk=REDEMPTION_SK,
                **pending_index(rid, end.redemption["business_date"]),
                # As a redemption's: orders against coupons (coupons.services.orders) find it by its order.
                **order_index(end.redemption.get("merchant_id"), end.redemption.get("order_id"), rid),
            )
            # One redemption per hold (its status guards that too): never an overwrite.
            tx.save(item, self._redemption.pk.does_not_exist(), tag=_REDEMPTION)
        self._coupon_end(tx, hold, end)
        tx.add(history_write(self._event, hold["code"], end.event))
        if idempotency is not None:
            # As a redemption's: no lock claimed first (one request), the record goes where none is live.
            tx.add(
                completed_write(
                    self._idempotency,
                    idempotency.scope,
                    idempotency.key,
                    fingerprint=idempotency.fingerprint,
                    status=idempotency.status,
                    body=idempotency.body,
                    expires_at=idempotency.expires_at,
                    now=idempotency.now,
                ),
                tag=_IDEMPOTENCY,
            )
        try:
            tx.commit()
        except TransactWriteError as error:
            # The key first: a retry of a capture that committed finds the hold CAPTURED, and must get
            # its first answer, not a 409.
            if idempotency is not None and tx.failed(error, _IDEMPOTENCY):
                raw = tx.reason(error, _IDEMPOTENCY).raw_item
                raise IdempotencyRecordExists(existing_record(self._idempotency, raw)) from None
            if tx.failed(error, _HOLD):
                old = tx.reason(error, _HOLD).raw_item
                raise HoldMoved(H.from_raw_data(old).record() if old else {}) from None
            if tx.failed(error, _COUPON):
                old = tx.reason(error, _COUPON).raw_item
                raise CardMoved(C.from_raw_data(old).record() if old else {}) from None
            if any(r is not None and r.code == "TransactionConflict" for r in error.cancellation_reasons):
                raise WriteConflict() from None
            raise

    def _coupon_end(self, tx: Transaction, hold: dict[str, Any], end: HoldEnd) -> None:
        C = self._coupon
        coupon = C(coupon_pk(hold["code"]), COUPON_SK)
        held = hold["held_amount"]
        if hold.get("coupon_type") != "GIFT_CARD":
            # Still held by this hold: the coupon cannot have been used or held by anything else.
            condition = (C.state == HELD) & (C.redemption_id == hold["redemption_id"])
            if end.status == CAPTURED:
                tx.update(coupon, [C.state.set("REDEEMED")], condition, tag=_COUPON)
            else:
                tx.update(coupon, [C.state.set("ISSUED"), C.redemption_id.remove()], condition, tag=_COUPON)
            return
        if end.status != CAPTURED:
            # Released: what was held is available again (an addition: it commutes with other holds).
            # The card has `available` since this hold reserved from it.
            tx.update(coupon, [C.available.set(C.available + held)], C.available.exists(), tag=_COUPON)
            return
        released = held - end.captured
        actions = [C.balance.set(C.balance - end.captured)]
        if released:
            actions.append(C.available.set(C.available + released))
        # Whether the capture drains the card decides its state, and the condition says it was so
        # guessed (a wrong guess is CardMoved with the card as it is: the service guesses again). The
        # balance covers the capture by construction (the hold reserved it out of `available`).
        if end.drains:
            condition = C.balance == end.captured
            actions.append(C.state.set("REDEEMED"))
        else:
            condition = C.balance > end.captured
            actions.append(C.state.set("PARTIALLY_USED"))
        tx.update(coupon, actions, condition, return_values="ALL_OLD", tag=_COUPON)

    def due(self, now_iso: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Live holds whose hold_expires_at <= now (at most `limit`): a key-range Query per shard of the
        live holds' index (gsi1, all attributes projected: the release needs no other read). The index
        is eventually consistent: the release's own condition decides, a stale entry is skipped."""
        model = self._partition
        found: list[dict[str, Any]] = []
        for shard in range(LIVE_HOLD_SHARDS):
            start: dict[str, Any] | None = None
            while len(found) < limit:
                results = model.query(
                    live_hold_partition(shard),
                    model.gsi1sk <= f"{now_iso}#~",
                    index_name="gsi1",
                    limit=min(LIVE_PAGE, limit - len(found)),
                    last_evaluated_key=start,
                )
                found += [i.record() for i in results if getattr(i, "kind", None) == "HOLD"]
                start = results.last_evaluated_key
                if not start:
                    break
        return found
