"""Coupon records, their history, the per-user holding counters, and the one transaction that issues
a coupon.

COUPON#{code}             / COUPON    gsi1: USER#{user_id} / {issued_at}#{code}   (the wallet)
HISTORY#{code}            / {at}#{ref}  one item per event of the coupon (issued, redeemed, reversed,
                                      voided); ref: the redemption / reversal id, or the event's name
HOLDING#{campaign}#{user} / HOLDING   held: how many coupons of the campaign the user was issued

A coupon's history is never a list on the coupon item: a busy gift card would reach DynamoDB's 400 KB
item limit after some 2,000 uses, and every write of the item costs its whole size. Each event is an
item of its own, written in the same transaction as the change it records; the coupon item's size does
not grow with use. The history has its own partition (not beside the coupon under COUPON#): the hot
item's partition holds only the coupon, and listings of COUPON# partitions see coupons only.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError

from coupons.data.idempotency import COMPLETION, raise_if_lock_lost
from coupons.data.models.base import Transaction, Write, failed_condition
from coupons.data.models.campaigns import SHARD_SK, QuotaShard, shard_pk
from coupons.data.models.coupons import (
    COUPON_SK,
    HOLDING_SK,
    Coupon,
    HistoryEvent,
    Holding,
    coupon_pk,
    history_pk,
    history_sk,
    holding_pk,
    wallet_pk,
)
from coupons.data.paging import page_of
from coupons.data.risk import RiskGuards, RiskGuardsFailed
from coupons.domain.risk import guessing
from coupons.domain.risk.plan import Guard

_SHARD, _COUPON, _HOLDING = "shard", "coupon", "holding"
# Reasons of a cancelled transaction that mean "someone else was on the item at that moment".
_CONTENTION = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}


class ShardRefused(Exception):
    """The shard had no unit left, or the campaign is not ACTIVE: `shard` is the shard as it is now."""

    def __init__(self, shard: dict[str, Any]):
        super().__init__("shard refused")
        self.shard = shard


class HoldingFull(Exception):
    pass


class CodeTaken(Exception):
    """A coupon has this code already: `coupon` is that coupon."""

    def __init__(self, coupon: dict[str, Any] | None = None):
        super().__init__("code taken")
        self.coupon = coupon or {}


class WriteConflict(Exception):
    """The transaction was cancelled without any condition failing: another transaction touched one of
    its items at that moment (TransactionConflict), or a partition was throttled. Nothing was written."""


def history_write(model: type[HistoryEvent], code: str, event: dict[str, Any]) -> Write:
    """The transaction's Put that records `event` ({"at", "event", …}) in the coupon's history.

    No condition: the event's ref is new by the transaction's own conditions (a new redemption or
    reversal id, a coupon issued or voided once), and one transaction never writes one event twice."""
    return Write("put", model.from_record(event, pk=history_pk(code), sk=history_sk(event)))


def contention(error: TransactWriteError) -> bool:
    """Whether a cancelled transaction met another on one of its items, or a throttled partition."""
    return any(r is not None and r.code in _CONTENTION for r in error.cancellation_reasons)


class CouponStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._coupon = Coupon.bound(client, table_name)
        self._event = HistoryEvent.bound(client, table_name)
        self._holding = Holding.bound(client, table_name)
        self._shard = QuotaShard.bound(client, table_name)
        self._risk = RiskGuards(client, table_name)

    def issue(
        self,
        coupon: dict[str, Any],
        *,
        shard: int,
        per_user_limit: int,
        completion: Write | None = None,
        guards: tuple[Guard, ...] = (),
    ) -> None:
        """Issues `coupon` in one transaction, or raises why not (with `guards`, the issuance risk
        rules' ConditionChecks and counters: RiskGuardsFailed). Three conditions hold together:
        the shard has a unit left and the campaign is ACTIVE (no over-issue, no issue while paused),
        the code is new (unique per tenant by condition, not by probability alone), and the user
        holds fewer than `per_user_limit` coupons of the campaign. `completion`: the Idempotency-Key's
        COMPLETED record, committed with the coupon."""
        campaign_id, user_id = coupon["campaign_id"], coupon["user_id"]
        Shard, C, H = self._shard, self._coupon, self._holding
        tx = Transaction(self._client)
        tx.update(
            Shard(shard_pk(campaign_id, shard), SHARD_SK),
            [Shard.remaining.set(Shard.remaining - 1)],
            # A unit left (no over-issue) and the campaign ACTIVE (its status is copied on every shard).
            (Shard.remaining >= 1) & (Shard.status == "ACTIVE"),
            return_values="ALL_OLD",
            tag=_SHARD,
        )
        item = C.from_record(
            {k: v for k, v in coupon.items() if k != "history"},  # its events: items of their own
            pk=coupon_pk(coupon["code"]),
            sk=COUPON_SK,
            gsi1pk=wallet_pk(user_id),
            gsi1sk=f"{coupon['issued_at']}#{coupon['code']}",
        )
        # The code is unique per tenant by this condition. A code derived from an Idempotency-Key that
        # exists is the first run's coupon: ALL_OLD hands it back.
        tx.save(item, C.pk.does_not_exist(), return_values="ALL_OLD", tag=_COUPON)
        tx.update(
            H(holding_pk(campaign_id, user_id), HOLDING_SK),
            [H.held.add(1), H.campaign_id.set(campaign_id), H.user_id.set(user_id)],
            # The per-user limit: the counter (absent before the user's first coupon) is below it.
            H.held.does_not_exist() | (H.held < per_user_limit),
            tag=_HOLDING,
        )
        for event in coupon.get("history", []):
            tx.add(history_write(self._event, coupon["code"], event))
        if completion is not None:
            tx.add(completion, tag=COMPLETION)
        self._risk.add(tx, guards)
        try:
            tx.commit()
        except TransactWriteError as error:
            raise_if_lock_lost(error, tx)
            # The code first: a re-run that lands on its first coupon also finds the user's holding
            # counted and maybe the shard dry, and must learn that the coupon is there.
            if tx.failed(error, _COUPON):
                old = tx.reason(error, _COUPON).raw_item
                raise CodeTaken(C.from_raw_data(old).record() if old else None) from None
            failed = self._risk.failed(tx, error, guards)
            if failed:
                raise RiskGuardsFailed(failed) from None
            if tx.failed(error, _SHARD):
                old = tx.reason(error, _SHARD).raw_item
                raise ShardRefused(Shard.from_raw_data(old).record() if old else {}) from None
            if tx.failed(error, _HOLDING):
                raise HoldingFull() from None
            if contention(error):
                raise WriteConflict() from None
            raise

    def get(self, code: str) -> dict[str, Any] | None:
        try:
            return self._coupon.get(coupon_pk(code), COUPON_SK, consistent_read=True).record()
        except self._coupon.DoesNotExist:
            return None

    def record_totp_failure(
        self, code: str, now: int, policy: guessing.LockoutPolicy
    ) -> guessing.TotpFailures | None:
        """Counts a wrong dynamic code on the coupon (coupons.domain.risk.guessing.on_failure) and returns
        its state after (None: no such coupon). The state read is written back only if it is still the
        state (a conditional write of what was read): two wrong codes at once are both counted."""
        C = self._coupon
        for _ in range(10):
            try:
                coupon = C.get(coupon_pk(code), COUPON_SK, consistent_read=True)
            except C.DoesNotExist:
                return None
            before = guessing.TotpFailures(
                coupon.totp_failures or 0, coupon.totp_failed_since or 0, coupon.totp_locked_until or 0
            )
            after, _ = guessing.on_failure(policy, before, now)
            if after == before:
                return after  # locked: trying again does not extend the lock
            try:
                coupon.update(
                    [
                        C.totp_failures.set(after.failures),
                        C.totp_failed_since.set(after.first_at),
                        C.totp_locked_until.set(after.locked_until),
                    ],
                    # The state this failure was counted from is still the state.
                    condition=(
                        (C.totp_failures.does_not_exist() | (C.totp_failures == before.failures))
                        & (
                            C.totp_locked_until.does_not_exist()
                            | (C.totp_locked_until == before.locked_until)
                        )
                    ),
                )
            except Exception as error:
                if failed_condition(error):
                    continue  # another failure was counted meanwhile: count this one from its state
                raise
            return after
        raise WriteConflict()

    def history(
        self, code: str, *, limit: int, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the coupon's events, newest first, and the cursor of the next (older) page."""
        partition = history_pk(code)
        return page_of(
            self._event,
            partition,
            query={"list": "coupon_history", "code": code},  # a page's start key is only for this coupon
            limit=limit,
            cursor=cursor,
            scan_index_forward=False,
            consistent_read=True,  # the event a change wrote a moment ago is shown with it
        )

    def void(self, code: str, event: dict[str, Any]) -> bool:
        """ISSUED → VOID, with `event` in its history; False if the coupon is not ISSUED now."""
        C = self._coupon
        tx = Transaction(self._client)
        tx.update(
            C(coupon_pk(code), COUPON_SK),
            [C.state.set("VOID")],
            # Only an unused coupon: a redemption racing the void wins or loses as a whole.
            C.state == "ISSUED",
            tag=_COUPON,
        )
        tx.add(history_write(self._event, code, event))
        try:
            tx.commit()
        except TransactWriteError as error:
            if tx.failed(error, _COUPON):
                return False
            if any(r is not None and r.code == "TransactionConflict" for r in error.cancellation_reasons):
                raise WriteConflict() from None
            raise
        return True

    def mark_dynamic_code_provisioned(self, code: str, at: str, *, completion: Write | None = None) -> bool:
        """Records that the coupon's dynamic-code secret was handed out; False if it was already.
        With `completion` (the Idempotency-Key's COMPLETED record) in one transaction."""
        C = self._coupon
        coupon = C(coupon_pk(code), COUPON_SK)
        actions = [C.dynamic_code_provisioned_at.set(at)]
        # Once per coupon: two concurrent calls cannot both hand the secret out.
        once = C.pk.exists() & C.dynamic_code_provisioned_at.does_not_exist()
        if completion is not None:
            tx = Transaction(self._client)
            tx.update(coupon, actions, once, tag=_COUPON)
            tx.add(completion, tag=COMPLETION)
            try:
                tx.commit()
            except TransactWriteError as error:
                if error.cause_response_code != "TransactionCanceledException":
                    raise  # PynamoDB wraps every failure; only a cancellation means "not written"
                raise_if_lock_lost(error, tx)
                return False
            return True
        try:
            coupon.update(actions, condition=once)
        except Exception as error:
            if failed_condition(error):
                return False
            raise
        return True

    def wallet(
        self,
        user_id: str,
        *,
        limit: int,
        cursor: str | None,
        brand_id: str | None,
        state: str | None,
        now: str,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A user's coupons, newest first; optionally one brand's, and in one state as of `now`
        (EXPIRED is not stored: it is an unused coupon whose valid_until has passed)."""
        C = self._coupon
        filters = []
        if brand_id is not None:
            filters.append(C.brand_id == brand_id)
        if state == "EXPIRED":
            filters.append(C.state.is_in("ISSUED", "PARTIALLY_USED") & (C.valid_until <= now))
        elif state in ("ISSUED", "PARTIALLY_USED"):
            filters.append((C.state == state) & (C.valid_until > now))
        elif state is not None:
            filters.append(C.state == state)
        condition = None
        for f in filters:
            condition = f if condition is None else condition & f
        partition = wallet_pk(user_id)
        return page_of(
            C,
            partition,
            index_name="gsi1",
            filter_condition=condition,
            # The cursor is bound to the user and the filters: a page's start key is only meant for them.
            query={"list": "wallet", "user": user_id, "brand": brand_id, "state": state},
            limit=limit,
            cursor=cursor,
            scan_index_forward=False,
        )
