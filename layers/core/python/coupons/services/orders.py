"""Orders against coupons (issue #16 point 8): merchants' order outcomes (the API's POST
/v1/orders/events, and the daily order file) applied to the redemptions made against each order.
Pure rules: coupons.domain.orders. A cancellation reverses its redemption in full, a refund without its
reversal gets the proportional one (both through the redemption service's own reversal, under an
Idempotency-Key derived from the event: a redelivered event reverses nothing twice); an amount that
differs, or no outcome within the grace period, is a reconciliation exception for finance."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from coupons.api.idempotency import run_idempotent
from coupons.data.idempotency import IdempotencyStore
from coupons.data.orders import OrderStore
from coupons.data.reconciliation import ReconciliationStore
from coupons.domain import orders as rules
from coupons.domain.errors import InvalidField
from coupons.domain.principals import Principal, Role
from coupons.domain.reconciliation.records import ExceptionClass, make
from coupons.domain.times import iso

CHANNEL = "orders"  # the exceptions' channel: they come from merchants' orders, not a payment channel
SYSTEM_RUN = "orders"
IDEMPOTENCY_TTL_SECONDS = 30 * 24 * 3600  # past it, the redemption's refunded total still stops a repeat


class Orders:
    def __init__(
        self,
        store: OrderStore,
        redeemer: Any,  # coupons.services.redemption.Redeemer: its reverse() and redemption reads
        redemptions: Any,  # coupons.data.redemptions.RedemptionStore (consistent reads of the item)
        idempotency: IdempotencyStore,
        reconciliation: ReconciliationStore,
        *,
        ledger: Any = None,  # coupons.data.ledger.LedgerStore: a merchant's redemptions of a day
        grace_hours: int = 48,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.store, self.redeemer, self.redemptions = store, redeemer, redemptions
        self.idempotency, self.recon, self.ledger = idempotency, reconciliation, ledger
        self.grace_hours, self._clock = grace_hours, clock

    def report(self, events: list[rules.OrderEvent], principal: Principal, *, source: str = "api",
               batch: bool = True) -> list[dict]:  # fmt: skip
        """Every event checked before any is written (a bad one: 400 naming it, nothing written);
        `batch`: the fields are named `events[i].…` (else the one event's own)."""
        principal.require(Role.ADMIN, Role.MERCHANT)
        for i, event in enumerate(events):
            where = f"events[{i}]." if batch else ""
            if principal.role is Role.MERCHANT and event.merchant_id != principal.merchant_id:
                raise InvalidField("a merchant reports its own orders", field=f"{where}merchant_id")
            for name, message in rules.problems(event):
                raise InvalidField(message, field=f"{where}{name}")
        return [self._apply(event, principal, source) for event in events]

    def _apply(self, event: rules.OrderEvent, principal: Principal, source: str) -> dict[str, Any]:
        record = {"event_id": event.event_id, "merchant_id": event.merchant_id, "order_id": event.order_id,
                  "type": str(event.type), "amount": event.amount, "currency": event.currency,
                  "occurred_at": event.occurred_at, "received_at": iso(self._clock()), "source": source,
                  "reported_by": str(principal)}  # fmt: skip
        new = self.store.record(record)
        history = self.store.events(event.merchant_id, event.order_id)
        mine = next((e for e in history if e["event_id"] == event.event_id), None)
        if not new and mine and mine.get("effects") is not None:
            return _view(mine, new=False)  # a redelivery: what the first delivery did
        refunds = sum(e.get("amount") or 0 for e in history if e["type"] == rules.OrderEventType.REFUNDED
                      and e["occurred_at"] <= event.occurred_at)  # fmt: skip
        effects: dict[str, Any] = {}
        for found in self.store.redemptions(event.merchant_id, event.order_id):
            redemption = self.redemptions.redemption(found["redemption_id"])
            if redemption is None:
                continue
            outcome = rules.decide(redemption, event, refunds)
            done: dict[str, Any] = {}
            if outcome.reverse > 0:
                done["reversal_id"] = self._reverse(redemption, event, outcome.reverse, principal)
            if outcome.exception is not None:
                done["exception_id"] = self._exception(redemption, event, *outcome.exception)
            effects[redemption["redemption_id"]] = done
        self.store.set_effects(record, effects)
        return _view({**record, "effects": effects}, new=new)

    def _reverse(self, redemption: dict, event: rules.OrderEvent, amount: int, principal: Principal) -> str:
        rid = redemption["redemption_id"]
        restore = event.type is rules.OrderEventType.CANCELLED  # a cancelled order gives the coupon back
        body = {"amount": amount, "restore_coupon": restore}
        status, answer, _ = run_idempotent(
            self.idempotency, scope=f"orders/{event.merchant_id}", key=f"{event.event_id}.{rid}",
            method="POST", path=f"/v1/redemptions/{rid}/reversals", body=body,
            ttl_seconds=IDEMPOTENCY_TTL_SECONDS,
            run=lambda completion: (201, self.redeemer.reverse(
                rid, principal, amount=amount, restore_coupon=restore,
                completion=completion.answering(201) if completion else None)),
        )  # fmt: skip
        return answer["reversal_id"]

    def _exception(
        self, redemption: dict, event: rules.OrderEvent | None, cls: str, stake: int, detail: str
    ) -> str:
        rid = redemption["redemption_id"]
        exc = make(ExceptionClass(cls), date=redemption["business_date"], channel=CHANNEL, key=rid,
                   currency=redemption["currency"], amount_at_stake=stake,
                   ours={"redemption_id": rid, "order_id": redemption.get("order_id"),
                         "merchant_id": redemption.get("merchant_id"), "order_amount": redemption["order_amount"],
                         "discount": redemption.get("discount"), "redeemed_at": redemption.get("redeemed_at")},
                   theirs=({"event_id": event.event_id, "type": str(event.type), "amount": event.amount,
                            "currency": event.currency, "occurred_at": event.occurred_at} if event else None),
                   detail=detail)  # fmt: skip
        from coupons.services.reconciliation import exception_record  # one record shape for every exception

        at = iso(self._clock())
        self.recon.record_exception(exception_record(exc), run_id=SYSTEM_RUN, at=at)
        self.recon.set_compensated(
            exc.exception_id, action="REVIEW", compensation_id="", review=True, resolution=None
        )
        return exc.exception_id

    def check_outcomes(self, merchant_id: str, business_date: str) -> list[str]:
        """ORDER_OUTCOME_MISSING for the merchant's redemptions of `business_date` and the day before
        (with an order id) whose order reported nothing `grace_hours` after: the ledger's postings on
        the merchant's account name them. Idempotent: the exception's id derives from the redemption."""
        start = (date.fromisoformat(business_date) - timedelta(days=1)).isoformat()
        ids, position = set(), (0, None)
        while position is not None:
            page, position = self.ledger.entries(f"merchant:{merchant_id}", from_date=start, to_date=business_date,
                                                 start=position, limit=200)  # fmt: skip
            ids |= {
                p["redemption_id"]
                for p in page
                if p.get("source_kind") == "REDEMPTION" and p.get("redemption_id")
            }
        redemptions = [r for r in (self.redemptions.redemption(i) for i in sorted(ids)) if r]
        answered = {r["redemption_id"] for r in redemptions
                    if r.get("order_id") and self.store.events(merchant_id, r["order_id"])}  # fmt: skip
        missing = rules.missing_outcomes(
            redemptions, answered, now=self._clock(), grace_hours=self.grace_hours
        )
        return [self._exception(r, None, "ORDER_OUTCOME_MISSING", r["discount"],
                                f"no outcome of order {r['order_id']} {self.grace_hours} hours after the redemption")
                for r in missing]  # fmt: skip


def _view(record: dict[str, Any], *, new: bool) -> dict[str, Any]:
    keep = ("event_id", "merchant_id", "order_id", "type", "amount", "currency", "occurred_at", "effects")
    return {**{k: record[k] for k in keep if record.get(k) is not None}, "recorded": new}
