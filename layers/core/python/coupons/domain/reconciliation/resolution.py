"""The journal of finance's resolution of an exception (复核处理), pure. What the automatic compensation
booked to `suspense:{channel}` (挂账) is emptied by the resolution, to the side it chooses; a
resolution of an exception with nothing in suspense moves what its action says, or nothing.

  ACCEPT_CHANNEL  the channel's side stands: suspense → who bears it (the party of an amount or a
                  duplicate, the tenant's fee bearer of a fee, the platform of money nobody claims;
                  the ledger's own difference goes back to settlement:{channel})
  WRITE_OFF       suspense → the named account; with nothing in suspense (a transfer the channel
                  never shows: MISSING, TIMING) the transfer itself, out of settlement:{channel}
  REVERSE         the compensation's journal undone, leg by leg (the channel reverses its side)
  RESEND          nothing: the transfer's own journal still holds it in settlement:{channel} (the
                  instruction itself is sent by the reconciliation function's post_resolutions)

Ids: `jnl_res_{sha256(exception id|action|n)[:24]}`, n the resolutions the exception had before (a
reopened exception resolved again is a new journal; a retried resolution is the same one)."""

from __future__ import annotations

import hashlib
from typing import Any

from coupons.domain.ledger import Journal, Leg
from coupons.domain.reconciliation.records import ExceptionClass as C

ACCEPT, RESEND, WRITE_OFF, REVERSE, REOPEN = "ACCEPT_CHANNEL", "RESEND", "WRITE_OFF", "REVERSE", "REOPEN"


def resolution_journal_id(exception_id: str, action: str, sequence: int) -> str:
    return f"jnl_res_{hashlib.sha256(f'{exception_id}|{action}|{sequence}'.encode()).hexdigest()[:24]}"


def _signed(ours: dict[str, Any]) -> int:
    return ours["amount"] if ours.get("direction") == "PAYOUT" else -ours["amount"]


def resolution_journal(
    exception: dict[str, Any],
    compensation_legs: list[dict[str, Any]] | None,
    action: str,
    *,
    account: str | None,
    fee_bearer: str = "platform",
    sequence: int = 0,
) -> Journal | None:
    """The balanced journal (integer legs summing to 0) of resolving `exception` with `action`, or None
    when the action moves no money. `compensation_legs`: the legs its compensation posted."""
    cls, channel = C(exception["cls"]), exception["channel"]
    suspense, settlement = f"suspense:{channel}", f"settlement:{channel}"
    legs_in = compensation_legs or []
    held = sum(leg["amount"] for leg in legs_in if leg["account"] == suspense)  # what it put in suspense
    ours, facts = exception.get("ours") or {}, exception.get("facts") or {}
    legs: list[Leg] = []
    if action == REVERSE:
        legs = [Leg(leg["account"], -leg["amount"]) for leg in legs_in]
    elif action == WRITE_OFF:
        if held:
            legs = [Leg(suspense, -held), Leg(account, held)]
        elif cls in (C.MISSING_AT_CHANNEL, C.TIMING) and ours.get("amount"):
            legs = [Leg(settlement, -_signed(ours)), Leg(account, _signed(ours))]
    elif action == ACCEPT and held:
        if cls is C.FEE_MISMATCH:
            bearer = fee_bearer
        elif cls is C.AMOUNT_MISMATCH:
            bearer = ours["party"]
        elif cls is C.DUPLICATE_AT_CHANNEL:
            bearer = facts.get("party") or ours["party"]
        elif cls is C.INTERNAL_MISMATCH:
            bearer = facts.get("account") or settlement
        else:  # UNKNOWN_AT_CHANNEL, CURRENCY_MISMATCH: money nobody of ours claims
            bearer = "platform"
        legs = [Leg(suspense, -held), Leg(bearer, held)]
    legs = [leg for leg in legs if leg.amount != 0]
    if not legs:
        return None
    journal_id = resolution_journal_id(exception["exception_id"], action, sequence)
    return Journal(journal_id=journal_id, source_id=exception["exception_id"], kind=f"RECONCILIATION_RESOLVED_{action}",
                   currency=exception["currency"], legs=tuple(legs), party_shares={},
                   rule={"exception_class": str(cls), "action": action})  # fmt: skip
