"""Redemptions and reversals, and the single transaction that redeems a coupon.

  REDEMPTION#{id} / REDEMPTION            the redemption, with what clearing needs (never reads back);
                                          or a redemption hold (kind HOLD) until its capture makes it one
  REDEMPTION#{id} / REVERSAL#{at}#{id}    its reversals, read page by page (a Query of the partition)
      both, until clearing has posted their journal (sparse):
      gsi2: CLEARING_PENDING#{pending_shard(id)} / {business_date}#{id}
  QRTOKEN#{nonce} / QRTOKEN               a used QR token (TTL: gone once the token has expired)

Redemption and reversal items carry `kind` (REDEMPTION / REVERSAL): clearing takes those from the
table's stream and nothing else.

Clearing pending: every redemption and reversal is written with gsi2 keys in one of PENDING_SHARDS
partitions (a hash of its own id, so no partition is hot); the transaction that posts its journal
removes them (data/ledger.py). So `pending_clearing(date)` finds what is not cleared yet, up to a
business date, with a few small Queries: settlement waits until nothing is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError

from coupons.data.coupons import WriteConflict, history_write
from coupons.data.idempotency import (
    COMPLETION,
    IdempotencyRecordExists,
    completed_write,
    existing_record,
    raise_if_lock_lost,
)
from coupons.data.models.base import Transaction, Write
from coupons.data.models.campaigns import SHARD_SK, QuotaShard, shard_pk
from coupons.data.models.coupons import COUPON_SK, Coupon, HistoryEvent, coupon_pk
from coupons.data.models.idempotency import IdempotencyRecord
from coupons.data.models.orders import order_index
from coupons.data.models.redemptions import (  # the pending-index names: re-exported for clearing and tests
    CLEARING_PENDING,  # noqa: F401
    PENDING_SHARDS,
    QR_TOKEN_SK,
    REDEMPTION_SK,
    REVERSAL_SK_PREFIX,
    QrToken,
    Redemption,
    RedemptionPartition,
    Reversal,
    live_hold_index,
    pending_index,
    pending_partition,
    pending_shard,  # noqa: F401
    qr_token_pk,
    redemption_pk,
    reversal_sk,
)
from coupons.data.paging import decode_cursor, encode_cursor
from coupons.data.redemption_holds import hold_coupon
from coupons.data.risk import GuessGate, RiskGuards, RiskGuardsFailed
from coupons.domain.risk.guessing import GuessCounter
from coupons.domain.risk.plan import Guard
from coupons.domain.times import parse as parse_time

# Tags of the redemption transaction's actions (Transaction: reasons are found by tag, never by index).
_CAMPAIGN, _COUPON, _REDEMPTION, _IDEMPOTENCY, _QR = "campaign", "coupon", "redemption", "idempotency", "qr"


class CampaignInactive(Exception):
    pass


class CouponRefused(Exception):
    """The coupon's conditions failed; `coupon` is the coupon as it is now ({} when there is none)."""

    def __init__(self, coupon: dict[str, Any]):
        super().__init__("coupon refused")
        self.coupon = coupon


class QrTokenUsed(Exception):
    pass


class RedemptionIdTaken(Exception):
    pass


class GuessGateClosed(Exception):
    """The caller is past its limit of codes looked up that do not exist (coupons.domain.risk.guessing)."""


@dataclass(frozen=True)
class CouponChange:
    """How the coupon changes, and what must be true of it for the change to happen."""

    code: str
    campaign_id: str
    now: str  # ISO UTC: the coupon must be valid at this moment
    event: dict[str, Any]  # recorded in the coupon's history
    redemption_id: str
    balance_before: int | None = None  # gift cards: the exact balance the take was computed from
    balance_after: int | None = None
    owner: str | None = None  # QR token: the holder it was issued to
    totp_step: int | None = None  # dynamic code: a step newer than any used
    at: int | None = None  # Unix seconds: a dynamic code's coupon must not be locked at this moment
    # A redemption hold ("capture": false): the coupon is HELD (single use) or `held` of a gift card's
    # available amount is reserved; the item put is the hold (data/redemption_holds.py), not the redemption.
    hold: bool = False
    held: int | None = None
    # Gift cards redeemed at once: the exact available amount (balance − holds) the take was computed
    # from, when the card has one (None: the card never had a hold, its available is its balance).
    available_before: int | None = None


@dataclass(frozen=True)
class IdempotencyWrite:
    scope: str
    key: str
    fingerprint: str
    status: int
    body: str  # the answer exactly as sent, so a replay is byte-identical
    now: int
    expires_at: int


@dataclass(frozen=True)
class CouponBack:
    """What a reversal gives back to the coupon. A gift card: its share, from the exact balance it was
    computed from (`balance_before` → `balance_after`, `state_after`). A single-use coupon: back to
    ISSUED, if it is still REDEEMED by `redemption_id` (券回退)."""

    code: str
    redemption_id: str | None = None
    balance_before: int | None = None
    balance_after: int | None = None
    state_after: str | None = None
    # A gift card with redemption holds: its available amount (balance − holds) as read; the share
    # comes back to it too (None: the card never had a hold).
    available_before: int | None = None


# What a captured redemption's answer tells of its hold.
HOLD_VIEW = ("hold_status", "held_amount", "held_at", "hold_expires_at", "captured_amount", "closed_at")
# Told only in a captured redemption's `hold` (held_amount, held_at and hold_expires_at also at the top).
_HOLD_ONLY = ("hold_status", "captured_amount", "closed_at")
# A Query per pending shard reads at most this many items per page.
PENDING_PAGE = 10


class RedemptionStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._shard = QuotaShard.bound(client, table_name)
        self._coupon = Coupon.bound(client, table_name)
        self._event = HistoryEvent.bound(client, table_name)
        self._redemption = Redemption.bound(client, table_name)
        self._reversal = Reversal.bound(client, table_name)
        self._partition = RedemptionPartition.bound(client, table_name)
        self._qr = QrToken.bound(client, table_name)
        self._idempotency = IdempotencyRecord.bound(client, table_name)
        self._risk = RiskGuards(client, table_name)
        self._guess = GuessGate(client, table_name)

    def redeem(
        self,
        redemption: dict[str, Any],
        change: CouponChange,
        *,
        shard: int,
        idempotency: IdempotencyWrite | None = None,
        qr_token: tuple[str, int] | None = None,
        guards: tuple[Guard, ...] = (),
        guess: list[GuessCounter] | None = None,
    ) -> None:
        """Decides and records a redemption in ONE TransactWriteItems, or raises why it was refused.

        - ConditionCheck a quota shard: the campaign is still ACTIVE (every shard carries its status,
          so a random one spreads these reads over the shards)
        - Update the coupon under its conditions (state, validity, campaign, holder, TOTP step,
          gift-card balance)
        - Put the redemption (a new id)
        - Put the Idempotency-Key record, COMPLETED with the answer, when the caller sent a key
        - Put the QR token's nonce, when one was used: a token works once
        - Put the coupon's history event (data/coupons.py): a write, not a request of its own
        - the risk rules' guards (data/risk.py): ConditionChecks of list entries, conditional
          updates of windowed counters, tagged ("risk", i); RiskGuardsFailed when any failed
        - ConditionCheck the caller's code-guessing counters (GuessGateClosed when one is at its limit)
        (PynamoDB sends them checks, puts, updates: reasons are read by tag.)
        """
        Shard, C = self._shard, self._coupon
        tx = Transaction(self._client)
        # The campaign is still ACTIVE: a paused or ended campaign redeems nothing.
        tx.condition_check(
            Shard, shard_pk(change.campaign_id, shard), SHARD_SK, Shard.status == "ACTIVE", tag=_CAMPAIGN
        )
        # The coupon belongs to the campaign whose terms priced the discount, and is valid now.
        condition = (
            (C.campaign_id == change.campaign_id)
            & (C.valid_from <= change.now)
            & (C.valid_until > change.now)
        )
        if change.hold:
            condition, actions = hold_coupon(C, condition, change)
        elif change.balance_before is None:
            # Single use: only an unused coupon.
            condition &= C.state == "ISSUED"
            actions = [C.state.set("REDEEMED"), C.redemption_id.set(change.redemption_id)]
        else:
            # The exact balance the take was computed from: a concurrent take makes this fail, and
            # the failure returns the new balance to compute again from.
            condition &= C.state.is_in("ISSUED", "PARTIALLY_USED") & (C.balance == change.balance_before)
            state_after = "PARTIALLY_USED" if change.balance_after else "REDEEMED"
            actions = [C.state.set(state_after), C.balance.set(change.balance_after)]
            if change.available_before is None:
                # No hold ever reserved any of it: the whole balance was available.
                condition &= C.available.does_not_exist()
            else:
                # The exact amount not held that the take was computed from: a hold placed or
                # released meanwhile makes this fail and the take is computed again (ALL_OLD).
                condition &= C.available == change.available_before
                actions.append(
                    C.available.set(change.available_before - (change.balance_before - change.balance_after))
                )
        if change.owner is not None:
            # A QR token was issued to its holder: only the holder's coupon.
            condition &= C.user_id == change.owner
        if change.totp_step is not None:
            # A dynamic code works once: its step must be newer than any used.
            condition &= C.totp_step.does_not_exist() | (C.totp_step < change.totp_step)
            actions.append(C.totp_step.set(change.totp_step))
            if change.at is not None:
                # Not locked by too many wrong dynamic codes (even the right one waits for the lock).
                condition &= C.totp_locked_until.does_not_exist() | (C.totp_locked_until <= change.at)
        tx.update(
            C(coupon_pk(change.code), COUPON_SK), actions, condition, return_values="ALL_OLD", tag=_COUPON
        )
        if change.hold:
            # A hold is the redemption-to-be at the redemption's own key (kind HOLD): not cleared, so in
            # the live holds' index (its expiry), not the pending one; the order index's key waits aside
            # until the capture moves it into gsi1 (data/redemption_holds.py).
            order = order_index(
                redemption.get("merchant_id"), redemption.get("order_id"), redemption["redemption_id"]
            )
            item = self._redemption.from_record(
                redemption,
                pk=redemption_pk(redemption["redemption_id"]),
                sk=REDEMPTION_SK,
                held_order_gsi1pk=order.get("gsi1pk"),
                **live_hold_index(redemption["redemption_id"], redemption["hold_expires_at"]),
            )
        else:
            item = self._redemption.from_record(
                redemption,
                pk=redemption_pk(redemption["redemption_id"]),
                sk=REDEMPTION_SK,
                **pending_index(redemption["redemption_id"], redemption["business_date"]),
                # Orders against coupons (coupons.services.orders) find an order's redemptions by it.
                **order_index(
                    redemption.get("merchant_id"), redemption.get("order_id"), redemption["redemption_id"]
                ),
            )
        # A new id: a clash (vanishingly rare) is retried with another, never an overwrite.
        tx.save(item, type(item).pk.does_not_exist(), tag=_REDEMPTION)
        if idempotency is not None:
            # No lock was claimed first (one request): the record goes in where no live one is.
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
        if qr_token is not None:
            nonce, expires_at = qr_token
            used = self._qr(qr_token_pk(nonce), QR_TOKEN_SK, expires_at=expires_at)
            # A token works once: its nonce must not be there yet.
            tx.save(used, self._qr.pk.does_not_exist(), tag=_QR)
        tx.add(history_write(self._event, change.code, change.event))
        self._risk.add(tx, guards)
        self._guess.add_checks(tx, guess or [])
        try:
            tx.commit()
        except TransactWriteError as error:
            # The idempotency record first: a retry of a request that succeeded also fails the
            # coupon's condition (it is redeemed now), and must get its first answer, not a 409.
            if idempotency is not None and tx.failed(error, _IDEMPOTENCY):
                raise IdempotencyRecordExists(
                    existing_record(self._idempotency, tx.reason(error, _IDEMPOTENCY).raw_item)
                ) from None
            # The guessing gate and the risk guards before the coupon: a caller past its limit, or a
            # blocked device, learns nothing about the coupon.
            if self._guess.refused(tx, error, guess or []):
                raise GuessGateClosed() from None
            failed = self._risk.failed(tx, error, guards)
            if failed:
                raise RiskGuardsFailed(failed) from None
            if tx.failed(error, _CAMPAIGN):
                raise CampaignInactive() from None
            if tx.failed(error, _COUPON):
                old = tx.reason(error, _COUPON).raw_item
                raise CouponRefused(C.from_raw_data(old).record() if old else {}) from None
            if qr_token is not None and tx.failed(error, _QR):
                raise QrTokenUsed() from None
            if tx.failed(error, _REDEMPTION):
                raise RedemptionIdTaken() from None
            if _conflict(error):
                raise WriteConflict() from None
            raise

    def redemption(self, redemption_id: str) -> dict[str, Any] | None:
        """The redemption item alone (its totals), never its reversals: what a reversal computes from.
        None for a hold not captured (kind HOLD): it is not a redemption (yet), there is nothing to refund;
        a captured hold is kind REDEMPTION for good."""
        try:
            found = self._redemption.get(redemption_pk(redemption_id), REDEMPTION_SK, consistent_read=True)
        except self._redemption.DoesNotExist:
            return None
        return found.record() if found.kind == "REDEMPTION" else None

    def get(
        self, redemption_id: str, *, limit: int, cursor: str | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]], str | None] | None:
        """The redemption, a page of at most `limit` of its reversals (oldest first) and the cursor of
        the next page. The first page is one Query: the redemption's sort key, REDEMPTION, sorts before
        its reversals' (REVERSAL#…); a later page reads the redemption item and the page."""
        partition = redemption_pk(redemption_id)
        model = self._partition
        query = {"list": "reversals", "redemption": redemption_id}  # only for this redemption's reversals
        start = decode_cursor(model, cursor, query=query, expect={"pk": partition})
        if start:
            redemption = self.redemption(redemption_id)
            if redemption is None:
                return None
        results = model.query(
            partition, consistent_read=True, limit=limit if start else limit + 1, last_evaluated_key=start
        )
        items = list(results)
        if not start:
            if not items or items[0].sk != REDEMPTION_SK:
                return None
            # A hold not captured (kind HOLD: HELD, VOIDED, EXPIRED) is read as it is; a captured one is
            # a redemption whose `hold` tells how it was held.
            redemption = items.pop(0).record()
            if redemption.get("kind") == "REDEMPTION" and "hold_status" in redemption:
                # A captured hold stores neither: they are its discount and redeemed_at (redemption_holds.py).
                captured = {"captured_amount": redemption["discount"], "closed_at": redemption["redeemed_at"]}
                hold = {k: v for k, v in (captured | redemption).items() if k in HOLD_VIEW}
                for k in _HOLD_ONLY:
                    redemption.pop(k, None)
                redemption["hold"] = hold
        reversals = [i.record() for i in items if i.sk.startswith(REVERSAL_SK_PREFIX)]
        return redemption, reversals, encode_cursor(model, results.last_evaluated_key, query=query)

    def pending_clearing(
        self, up_to_business_date: str, *, before: datetime | None = None, limit: int = 10
    ) -> list[dict[str, Any]]:
        """Redemptions and reversals with business dates up to `up_to_business_date` whose journal is
        not posted yet (at most `limit`; [] = everything up to that date is cleared). One small Query
        per pending shard, stopping as soon as `limit` are found. With `before` (a settlement run's
        cut-off), only those whose event (redeemed_at / reversed_at) came before it.

        The index is eventually consistent: an item cleared a moment ago may still be listed, one
        written a moment ago may not be yet. Ask about business dates that have ended."""
        model = self._partition
        found: list[dict[str, Any]] = []
        for shard in range(PENDING_SHARDS):
            start: dict[str, Any] | None = None
            while len(found) < limit:
                results = model.query(
                    pending_partition(shard),
                    model.gsi2sk <= f"{up_to_business_date}#~",
                    index_name="gsi2",
                    attributes_to_get=[
                        "kind",
                        "redemption_id",
                        "reversal_id",
                        "business_date",
                        "redeemed_at",
                        "reversed_at",
                    ],
                    limit=min(PENDING_PAGE, limit - len(found)),
                    last_evaluated_key=start,
                )
                records = [item.record() for item in results]
                if before is not None:
                    records = [r for r in records if _event_before(r, before)]
                found += [_pending(r) for r in records]
                start = results.last_evaluated_key
                if not start:
                    break
            if len(found) >= limit:
                break
        return sorted(found, key=lambda r: (r["business_date"], r.get("reversal_id", r["redemption_id"])))

    def reverse(
        self,
        reversal: dict[str, Any],
        *,
        refunded_before: int,
        refunded_after: int,
        discount_reversed_after: int,
        coupon_back: CouponBack | None,
        coupon_event: dict[str, Any] | None = None,
        completion: Write | None = None,
    ) -> bool:
        """Records a reversal against its redemption in one transaction. False when another reversal
        of the same redemption got in first (the caller reads again and recomputes).

        `coupon_back`: what the coupon gets back (a gift card's share, a single-use coupon's ISSUED
        state), or None; `coupon_event`: what the coupon's history records of it. `completion`: the
        Idempotency-Key's COMPLETED record, committed with the reversal (a refund whose answer was
        lost is then replayed, never applied again)."""
        redemption_id = reversal["redemption_id"]
        R = self._redemption
        tx = Transaction(self._client)
        tx.update(
            R(redemption_pk(redemption_id), REDEMPTION_SK),
            [R.refunded_amount.set(refunded_after), R.discount_reversed.set(discount_reversed_after)],
            # Optimistic: the totals we computed from are still the totals, so two concurrent
            # reversals can never together reverse more than there is.
            R.refunded_amount == refunded_before,
        )
        item = self._reversal.from_record(
            reversal,
            pk=redemption_pk(redemption_id),
            sk=reversal_sk(reversal["reversed_at"], reversal["reversal_id"]),
            **pending_index(reversal["reversal_id"], reversal["business_date"]),
        )
        # A new reversal id: never an overwrite of another reversal.
        tx.save(item, self._reversal.pk.does_not_exist())
        if coupon_back is not None:
            self._give_back(tx, coupon_back)
            if coupon_event is not None:
                tx.add(history_write(self._event, reversal["code"], coupon_event))
        if completion is not None:
            tx.add(completion, tag=COMPLETION)
        try:
            tx.commit()
        except TransactWriteError as error:
            raise_if_lock_lost(error, tx)
            codes = {r.code for r in error.cancellation_reasons if r is not None}
            if {"ConditionalCheckFailed", "TransactionConflict"} & codes:
                return False
            raise
        return True

    def _give_back(self, tx: Transaction, back: CouponBack) -> None:
        C = self._coupon
        coupon = C(coupon_pk(back.code), COUPON_SK)
        if back.balance_before is not None:
            actions = [C.balance.set(back.balance_after), C.state.set(back.state_after)]
            # The exact balance the share was added to: a take racing the refund makes the
            # reversal compute again.
            condition = C.balance == back.balance_before
            if back.available_before is None:
                condition &= C.available.does_not_exist()  # no hold ever: available is the balance
            else:
                # And the exact amount not held: what comes back is available (a hold or its release
                # racing the refund makes the reversal compute again).
                condition &= C.available == back.available_before
                actions.append(
                    C.available.set(back.available_before + back.balance_after - back.balance_before)
                )
            tx.update(coupon, actions, condition)
            return
        tx.update(
            coupon,
            [C.state.set("ISSUED"), C.redemption_id.remove()],
            # Still used by this redemption only: a coupon voided, or used again after being given
            # back, is not given back twice.
            (C.state == "REDEEMED") & (C.redemption_id == back.redemption_id),
        )


def _conflict(error: TransactWriteError) -> bool:
    return any(r is not None and r.code == "TransactionConflict" for r in error.cancellation_reasons)


def _event_before(item: dict[str, Any], cutoff: datetime) -> bool:
    """A reversal's event is its reversed_at (its item also names the redemption's redeemed_at); a
    record without a time is counted as before (waited for rather than missed)."""
    at = item.get("reversed_at") if item.get("kind") == "REVERSAL" else item.get("redeemed_at")
    return at is None or parse_time(at) < cutoff


def _pending(item: dict[str, Any]) -> dict[str, Any]:
    keys = ("kind", "redemption_id", "business_date")
    if item.get("kind") == "REVERSAL":
        keys += ("reversal_id",)
    return {k: item[k] for k in keys if k in item}


def source_images(client, table_name: str, redemption_id: str) -> list[dict[str, Any]]:
    """The redemption and its reversals as stored, keys included: what clearing is given from the stream's
    new image (re-clear hands these to the same Clearer). Oldest reversal last, redemption first."""
    model = RedemptionPartition.bound(client, table_name)
    items = [
        i.record(keep_keys=True) for i in model.query(redemption_pk(redemption_id), consistent_read=True)
    ]
    return sorted(items, key=lambda i: (i["sk"] != REDEMPTION_SK, i["sk"]))
