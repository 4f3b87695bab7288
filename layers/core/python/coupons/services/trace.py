"""A coupon's or a redemption's whole chain in one answer (GET /v1/coupons/{code}/trace,
GET /v1/redemptions/{id}/trace): issued, verified (how), redeemed, reversed, cleared (rule, version,
legs), settled (run, party, transfer, the channel's reference), each step with its time, its actor and
the audit entries of the items it wrote. A few key reads and queries, never a scan.

Steps later issues add (the risk decision, reconciliation) join the chain as their items exist: a step
lists only what happened, never a placeholder. After a transfer: `reconciled` (a statement matched it:
CONFIRMED, or RETURNED, with the file's date) and one `reconciliation_exception` per exception opened
on it (its class, status, action), when there are.
"""

from __future__ import annotations

from typing import Any

from coupons.data.audit import AuditStore
from coupons.data.coupons import CouponStore
from coupons.data.ledger import LedgerStore, shard_of
from coupons.data.models.coupons import COUPON_SK, coupon_pk
from coupons.data.models.ledger import JOURNAL_SK, journal_pk
from coupons.data.models.reconciliation import EXCEPTION_SK, TRANSFER_SK, exception_pk, transfer_state_pk
from coupons.data.models.redemptions import REDEMPTION_SK, redemption_pk
from coupons.data.models.settlement import party_pk
from coupons.data.reconciliation import ReconciliationStore
from coupons.data.settlement import SettlementStore
from coupons.data.trace import TraceReads
from coupons.domain import codes
from coupons.domain.coupons import CouponNotFound, can_see
from coupons.domain.ledger import journal_id
from coupons.domain.principals import Principal, Role
from coupons.domain.reconciliation.records import transfer_day, transfer_exception_ids
from coupons.domain.transfer_journals import transfer_journal_id
from coupons.services.audit import entry_id

# A coupon's trace follows at most this many of its redemptions (a gift card's): the rest by id.
MAX_REDEMPTIONS = 20


def _own_account(account: str, principal: Principal) -> bool:
    """A party sees its own settlement, not the others' (their nets and transfers are theirs)."""
    if principal.role is Role.MERCHANT:
        return account == f"merchant:{principal.merchant_id}"
    if principal.role is Role.ISSUER:
        return account == f"brand:{principal.brand_id}"
    return True


class Tracer:
    def __init__(
        self,
        *,
        redemption_of,  # (redemption_id, principal) -> (redemption, reversals, cursor), scoped (404 otherwise)
        coupons: CouponStore,
        ledger: LedgerStore,
        settlement: SettlementStore,
        reads: TraceReads,
        audit: AuditStore,
        reconciliation: ReconciliationStore | None = None,
        time_zone: str = "UTC",  # the tenant's: a transfer is dated by its day there (reconciliation's rule)
    ):
        self._redemption_of = redemption_of
        self._coupons, self._ledger, self._settlement = coupons, ledger, settlement
        self._reads, self._audit = reads, audit
        self._reconciliation, self._time_zone = reconciliation, time_zone

    def _entries(self, key: tuple[str, str]) -> list[str]:
        # An entry's log id ends with its shard ({tenant}/audit/{shard}).
        return [entry_id(int(e.audit_log.rsplit("/", 1)[1]), e.seq) for e in self._audit.of_item(*key)]

    def redemption(self, redemption_id: str, principal: Principal) -> dict[str, Any]:
        redemption, reversals, _ = self._redemption_of(redemption_id, principal)
        steps: list[dict[str, Any]] = []
        if principal.role is not Role.MERCHANT:  # the issue and its holder are the brand's, not the till's
            coupon = self._coupons.get(redemption["code"])
            if coupon is not None:
                steps.append(self._issued(coupon))
        steps += self._redemption_steps(redemption, reversals, principal)
        return {"redemption_id": redemption_id, "code": redemption["code"], "steps": steps}

    def coupon(self, typed_code: str, principal: Principal) -> dict[str, Any]:
        principal.require(Role.ADMIN, Role.ISSUER)
        code = codes.normalize(typed_code)
        coupon = self._coupons.get(code)
        if coupon is None or not can_see(coupon, principal):
            raise CouponNotFound(field="code")
        steps = [self._issued(coupon)]
        events, _ = self._coupons.history(code, limit=100)
        redeemed = [
            e["redemption_id"]
            for e in reversed(events)
            # A hold captured is a redemption too (its history says CAPTURED where it was made).
            if e.get("event") in ("REDEEMED", "CAPTURED") and e.get("redemption_id")
        ]
        for rid in redeemed[:MAX_REDEMPTIONS]:
            redemption, reversals, _ = self._redemption_of(rid, principal)
            steps += self._redemption_steps(redemption, reversals, principal)
        for event in reversed(events):
            if event.get("event") == "VOIDED":
                steps.append({"step": "voided", "at": event["at"], "actor": event.get("by"),
                              "audit_entry_ids": self._entries((coupon_pk(code), COUPON_SK))})  # fmt: skip
        return {"code": code, "state": coupon["state"], "steps": sorted(steps, key=lambda s: s["at"])}

    # -- the steps ---------------------------------------------------------------------------------------

    def _issued(self, coupon: dict[str, Any]) -> dict[str, Any]:
        first = next((e for e in coupon.get("history") or [] if e.get("event") == "ISSUED"), {})
        return {
            "step": "issued",
            "at": first.get("at") or coupon.get("valid_from"),
            "actor": first.get("by"),
            "campaign_id": coupon.get("campaign_id"),
            "audit_entry_ids": self._entries((coupon_pk(coupon["code"]), COUPON_SK))[:1],
        }

    def _redemption_steps(
        self, redemption: dict[str, Any], reversals: list[dict[str, Any]], principal: Principal
    ) -> list[dict[str, Any]]:
        rid = redemption["redemption_id"]
        redemption_entries = self._entries((redemption_pk(rid), REDEMPTION_SK))
        hold = redemption.get("hold") or (redemption if redemption.get("kind") == "HOLD" else None)
        held = [] if hold is None else [{
            # A redemption hold (docs/redemption.md "Holds"): placed, then captured, voided or expired.
            "step": "held", "at": redemption.get("held_at"), "actor": redemption.get("redeemed_by"),
            "redemption_id": rid, "merchant_id": redemption["merchant_id"], "held_amount": hold.get("held_amount"),
            "hold_expires_at": hold.get("hold_expires_at"), "hold_status": hold.get("hold_status"),
            "closed_at": hold.get("closed_at"), "audit_entry_ids": redemption_entries[:1],
        }]  # fmt: skip
        if redemption.get("kind") == "HOLD":
            # Not captured: nothing was redeemed, nothing cleared.
            at = redemption.get("held_at")
            return [
                {"step": "verified", "at": at, "actor": redemption.get("redeemed_by"),
                 "method": redemption.get("verification_method"), "redemption_id": rid,
                 "audit_entry_ids": redemption_entries[:1]},
                *held,
            ]  # fmt: skip
        steps = [
            {
                "step": "verified", "at": redemption["redeemed_at"], "actor": redemption.get("redeemed_by"),
                "method": redemption.get("verification_method"), "redemption_id": rid,
                "audit_entry_ids": redemption_entries[:1],
            },
            {
                # The risk decision taken inside the redemption's own transaction (coupons.domain.risk):
                # the rule that decided, or none held (allowed by default).
                "step": "risk_decision", "at": redemption["redeemed_at"], "actor": "risk",
                "action": redemption.get("risk_action") or "ALLOW", "rule_id": redemption.get("risk_rule_id"),
                "rule_version": redemption.get("risk_rule_version"), "reason": redemption.get("risk_reason"),
                "review_hold": redemption.get("review_hold"), "audit_entry_ids": redemption_entries[:1],
            },
            {
                "step": "redeemed", "at": redemption["redeemed_at"], "actor": redemption.get("redeemed_by"),
                "redemption_id": rid, "merchant_id": redemption["merchant_id"], "store_id": redemption.get("store_id"),
                "order_id": redemption.get("order_id"), "discount": redemption["discount"],
                "currency": redemption["currency"], "audit_entry_ids": redemption_entries[:1],
            },
        ]  # fmt: skip
        steps[2:2] = held  # placed before it was captured
        for reversal in reversals:
            steps.append({
                "step": "reversed", "at": reversal.get("reversed_at"), "actor": reversal.get("reversed_by"),
                "reversal_id": reversal.get("reversal_id"), "refund_amount": reversal.get("refund_amount"),
                "discount_reversed": reversal.get("discount_reversed"),
                "audit_entry_ids": self._entries(
                    (f"REDEMPTION#{rid}", f"REVERSAL#{reversal.get('reversed_at')}#{reversal.get('reversal_id')}")
                )[:1],
            })  # fmt: skip
        journal = self._ledger.journal(journal_id(rid))
        if journal is None:
            return steps
        steps.append({
            "step": "cleared", "at": journal.get("posted_at"), "actor": "clearing",
            "journal_id": journal["journal_id"], "rule": journal.get("rule"), "legs": journal.get("legs"),
            "business_date": journal.get("business_date"), "due_date": journal.get("due_date"),
            "audit_entry_ids": self._entries((journal_pk(journal["journal_id"]), JOURNAL_SK))[:1],
        })  # fmt: skip
        steps += self._settled(journal, principal)
        return steps

    def _settled(self, journal: dict[str, Any], principal: Principal) -> list[dict[str, Any]]:
        shard = shard_of(journal["journal_id"])
        keys = [
            (f"ENTRIES#{leg['account']}#{shard}", f"{journal['business_date']}#{journal['journal_id']}")
            for leg in journal.get("legs") or []
        ]
        steps = []
        for posting in self._reads.postings(keys):
            run_id = posting.get("run_id")
            if not run_id or not _own_account(posting["account"], principal):
                continue
            party = self._settlement.party(run_id, posting["account"]) or {}
            outcome = (party.get("currencies") or {}).get(posting.get("currency"), {})
            steps.append({
                "step": "settled" if posting.get("settled") else "claimed",
                "at": posting.get("settled_at") or outcome.get("sent_at") or party.get("created_at"),
                "actor": "settlement", "run_id": run_id, "party": posting["account"],
                "amount": posting.get("amount"), "currency": posting.get("currency"),
                "transfer": {k: outcome.get(k) for k in ("status", "decision", "net", "instruction_id", "channel_reference", "sent_at")},
                "audit_entry_ids": self._entries((posting["pk"], posting["sk"]))
                + self._entries((party_pk(run_id, posting["account"]), posting["account"])),
            })  # fmt: skip
            if outcome.get("instruction_id"):  # the transfer that paid or collected it
                steps += self._reconciled(outcome)
        return steps

    def _reconciled(self, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        """What reconciliation made of the transfer: the statement that matched it (RECONTRANSFER), and
        the exceptions it opened on it (ids derived from the transfer: a batch get, no index). Nothing
        before any statement showed or missed it."""
        if self._reconciliation is None:
            return []
        instruction_id, steps = outcome["instruction_id"], []
        state = self._reconciliation.transfer_state(instruction_id)
        if state is not None:
            steps.append({
                "step": "reconciled", "at": state["at"], "actor": "reconciliation", "instruction_id": instruction_id,
                "status": state["status"], "statement_date": state["statement_date"], "run_id": state["run_id"],
                "audit_entry_ids": self._entries((transfer_state_pk(instruction_id), TRANSFER_SK))[:1],
            })  # fmt: skip
        # Its channel is the one its own journal put it on the way through (settlement:{channel}).
        journal = self._ledger.journal(transfer_journal_id(instruction_id)) or {}
        channels = {leg["account"].split(":", 1)[1] for leg in journal.get("legs") or []
                    if leg["account"].startswith("settlement:")}  # fmt: skip
        moment = outcome.get("sent_at") or outcome.get("instructed_at")
        if not channels or not moment:
            return steps
        day = transfer_day(moment, self._time_zone)
        ids = [
            i for channel in sorted(channels) for i in transfer_exception_ids(instruction_id, day, channel)
        ]
        for e in self._reconciliation.exceptions_by_id(ids):
            steps.append({
                "step": "reconciliation_exception", "at": e["opened_at"], "actor": "reconciliation",
                "exception_id": e["exception_id"], "class": e["cls"], "status": e["status"],
                "action": e.get("action"), "amount_at_stake": e["amount_at_stake"], "currency": e["currency"],
                "resolution": {k: (e.get("resolution") or {}).get(k) for k in ("action", "by", "at")}
                if e["status"] == "RESOLVED" else None,
                "audit_entry_ids": self._entries((exception_pk(e["exception_id"]), EXCEPTION_SK))[:1],
            })  # fmt: skip
        return steps
