"""Redemption holds (authorizations): what a hold does to its coupon, and the single transaction that
captures, voids or releases (expiry) one. The hold itself is placed by the redemption's own transaction
(data/redemptions.py, with `hold_coupon` below) at the redemption's key, kind HOLD: see docs/redemption.md
"Holds".

Every end of a hold is ONE TransactWriteItems whose first condition is the hold's `kind = HOLD AND
hold_status = HELD`: of any number of captures, voids and expiry releases racing on one hold exactly one
commits. It needs no read first: what it writes of the hold comes from its sealed id (`HoldRef.sealed`)
or from the hold read (`HoldRef.of`), and a capture turns the item itself into the redemption (no copy).
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
from coupons.data.models.redemptions import (
    LIVE_HOLD_SHARDS,
    REDEMPTION_SK,
    Redemption,
    RedemptionPartition,
    live_hold_partition,
    pending_index,
    redemption_pk,
)
from coupons.domain.hold_ids import HoldFacts
from coupons.domain.redemption_holds import CAPTURED, HELD

if TYPE_CHECKING:
    from coupons.data.redemptions import CouponChange, IdempotencyWrite

_HOLD, _COUPON, _IDEMPOTENCY = "hold", "coupon", "idempotency"
HOLD, REDEMPTION = "HOLD", "REDEMPTION"  # the item's kind before and after its capture
# A Query of a live-holds shard reads at most this many holds at once.
LIVE_PAGE = 25


class HoldMoved(Exception):
    """The hold's condition failed: `hold` is the item as it is ({} when there is none): not HELD any
    more, its time ran out (captures, voids) / has not (expiry), another merchant's, not a hold at all,
    or a hold without an order to index (a sealed id's capture: HoldRef.has_order guessed)."""

    def __init__(self, hold: dict[str, Any]):
        super().__init__("hold moved")
        self.hold = hold


class CardMoved(Exception):
    """A gift card's capture guessed wrong whether it drains the card (`coupon`: the card as it is)."""

    def __init__(self, coupon: dict[str, Any]):
        super().__init__("card moved")
        self.coupon = coupon


@dataclass(frozen=True)
class HoldRef:
    """What ending a hold writes and answers of it: from its sealed id (no read) or from the hold read."""

    redemption_id: str
    code: str
    gift_card: bool
    currency: str
    held_amount: int
    hold_expires_at: str
    coupon_type: str | None = None
    # Whether the hold has an order to index once captured (`held_order_gsi1pk`): a sealed id cannot say,
    # and guesses yes (a redemption through the API always has one); the condition checks it.
    has_order: bool = True

    @classmethod
    def sealed(cls, redemption_id: str, facts: HoldFacts) -> HoldRef:
        return cls(
            redemption_id, facts.code, facts.gift_card, facts.currency, facts.held_amount,
            facts.hold_expires_at, facts.coupon_type,
        )  # fmt: skip

    @classmethod
    def of(cls, hold: dict[str, Any]) -> HoldRef:
        """The hold as read (a record of the item, `held_order_gsi1pk` included)."""
        return cls(
            hold["redemption_id"], hold["code"], hold.get("coupon_type") == "GIFT_CARD", hold["currency"],
            hold["held_amount"], hold["hold_expires_at"], hold.get("coupon_type"),
            has_order="held_order_gsi1pk" in hold,
        )  # fmt: skip


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
    drains: bool = False  # a gift card's capture that leaves its balance at 0
    business_date: str | None = None  # CAPTURED: the redemption's (the capture's, in the tenant's zone)
    coupon_state_after: str | None = None  # CAPTURED: the coupon's state after


class RedemptionHoldStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._hold = Redemption.bound(client, table_name)
        self._partition = RedemptionPartition.bound(client, table_name)
        self._coupon = Coupon.bound(client, table_name)
        self._event = HistoryEvent.bound(client, table_name)
        self._idempotency = IdempotencyRecord.bound(client, table_name)

    def hold_of(self, redemption_id: str) -> dict[str, Any] | None:
        """The item at the redemption's key as it is (a hold, kind HOLD, or a redemption), with
        `held_order_gsi1pk`: one strongly consistent GetItem (the read path, off the happy path)."""
        try:
            found = self._hold.get(redemption_pk(redemption_id), REDEMPTION_SK, consistent_read=True)
        except self._hold.DoesNotExist:
            return None
        return _as_read(found)

    def end(
        self,
        hold: HoldRef,
        end: HoldEnd,
        *,
        merchant: str | None = None,
        idempotency: IdempotencyWrite | None = None,
    ) -> None:
        """Captures, voids or releases `hold` in ONE TransactWriteItems, or raises why not:
        IdempotencyRecordExists (the key answered before), HoldMoved, CardMoved, WriteConflict.
        `merchant`: the caller's, when the hold was not read (its condition proves the hold is theirs).

        - Update the hold item: hold_status, closed_at, out of the live holds' index; a capture makes it
          the redemption clearing posts (kind REDEMPTION, at the captured amount, in the pending and
          order indexes: the stream's MODIFY HOLD → REDEMPTION, coupons.data.redemption_stream)
        - Update the coupon: REDEEMED / back to ISSUED; a gift card's balance and available amount
        - Put the coupon's history event; the Idempotency-Key's COMPLETED record when a key was sent"""
        H, C = self._hold, self._coupon
        rid = hold.redemption_id
        tx = Transaction(self._client)
        actions = [H.hold_status.set(end.status)]
        # A hold, and still HELD: exactly one of racing captures, voids and releases gets in (and a
        # redemption captured when made, or a hold captured already, is kind REDEMPTION: not a hold).
        condition = (H.kind == HOLD) & (H.hold_status == HELD)
        if end.status == CAPTURED:
            pending = pending_index(rid, end.business_date)
            # Neither captured_amount nor closed_at is stored: they are the redemption's discount and
            # redeemed_at (data/redemptions.py reads them so). With a hold's long id (in pk, redemption_id,
            # gsi1sk, gsi2sk) the item is near 1 KB, where every write of it would cost twice as much.
            actions += [
                H.kind.set(REDEMPTION),
                H.discount.set(end.captured),
                H.redeemed_at.set(end.now),
                H.business_date.set(end.business_date),
                H.coupon_state_after.set(end.coupon_state_after),
                H.gsi2pk.set(pending["gsi2pk"]),
                H.gsi2sk.set(pending["gsi2sk"]),
                H.held_order_gsi1pk.remove(),
            ]
            if hold.has_order:
                # Orders against coupons (coupons.services.orders) find it by its order from now on.
                actions += [H.gsi1pk.set(H.held_order_gsi1pk), H.gsi1sk.set(f"REDEMPTION#{rid}")]
                # The order's key is there to move (a sealed id only guesses it: HoldMoved says if not).
                condition &= H.held_order_gsi1pk.exists()
            else:
                actions += [H.gsi1pk.remove(), H.gsi1sk.remove()]
        else:
            actions += [
                H.closed_at.set(end.now),
                H.gsi1pk.remove(),
                H.gsi1sk.remove(),
                H.held_order_gsi1pk.remove(),
            ]
        if end.status == "EXPIRED":
            # The sweep: its time is up (a capture or void that got in first wins on the status).
            condition &= H.hold_expires_at <= end.now
        else:
            # Not past its time: from hold_expires_at on, a capture or void is refused whether or not
            # the sweep has run (the release is the sweep's: hold_expired).
            condition &= H.hold_expires_at > end.now
        if merchant is not None:
            # Not read: only the merchant that placed the hold may end it (another's is a 404, as read).
            condition &= H.merchant_id == merchant
        tx.update(
            H(redemption_pk(rid), REDEMPTION_SK), actions, condition, return_values="ALL_OLD", tag=_HOLD
        )
        self._coupon_end(tx, hold, end)
        tx.add(history_write(self._event, hold.code, end.event))
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
                raise HoldMoved(_as_read(H.from_raw_data(old)) if old else {}) from None
            if tx.failed(error, _COUPON):
                old = tx.reason(error, _COUPON).raw_item
                raise CardMoved(C.from_raw_data(old).record() if old else {}) from None
            if any(r is not None and r.code == "TransactionConflict" for r in error.cancellation_reasons):
                raise WriteConflict() from None
            raise

    def _coupon_end(self, tx: Transaction, hold: HoldRef, end: HoldEnd) -> None:
        C = self._coupon
        coupon = C(coupon_pk(hold.code), COUPON_SK)
        held = hold.held_amount
        if not hold.gift_card:
            # Still held by this hold: the coupon cannot have been used or held by anything else.
            condition = (C.state == HELD) & (C.redemption_id == hold.redemption_id)
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
        # Additions, no read: the balance loses what is captured, `available` gets back what is released
        # (it lost all of the hold when the hold was placed).
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
                found += [_as_read(i) for i in results if getattr(i, "kind", None) == HOLD]
                start = results.last_evaluated_key
                if not start:
                    break
        return found


def _as_read(item: Redemption) -> dict[str, Any]:
    """A hold's record with `held_order_gsi1pk` (which a store's record leaves out): what HoldRef.of needs."""
    record = item.record()
    if getattr(item, "held_order_gsi1pk", None):
        record["held_order_gsi1pk"] = item.held_order_gsi1pk
    return record
