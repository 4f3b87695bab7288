"""Compensation (补偿): for each exception the action, and the journal that keeps the ledger the
truth. Pure and idempotent: every id (compensation, journal, a recovery transfer) is derived from
the exception's id and the action, so a replayed run computes the same ones and the stores' writes
under `attribute_not_exists` make the replay change nothing. Journal legs are integers that sum to
0 (`ledger.Journal` refuses anything else).

Accounts (a leg is what the account is owed, +, or owes, −, as in `domain/ledger`):
  {party}               merchant:M, brand:B, platform
  settlement:{channel}  what we instructed and the channel has not confirmed yet
  bank:{channel}        what moved through the channel (a confirmed payout +, a collection −)
  fees:{channel}        the channel's fees
  suspense:{channel}    挂账: money that moved and nobody explains yet; cleared by finance's review
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from coupons.domain.ledger import Journal, Leg
from coupons.domain.payments import Direction, Receipt
from coupons.domain.reconciliation.records import ExceptionClass as C
from coupons.domain.reconciliation.records import ReconException


class Action(StrEnum):
    HOLD = "HOLD"  # TIMING: wait for the next days' files
    CLOSE = "CLOSE"  # TIMING booked on a neighbouring day: the money moved, nothing to do
    ESCALATE = "ESCALATE"  # TIMING past T+2 (or beyond the drift): finance reviews
    QUERY_CHANNEL = "QUERY_CHANNEL"  # MISSING: ask the channel by our id (then after_query)
    RESEND = "RESEND"  # MISSING, the channel never had it: the same instruction, the same id
    REMATCH = "REMATCH"  # MISSING, the channel has it: match it again
    RETURN_AND_REVERSE = "RETURN_AND_REVERSE"  # STATUS: transfer RETURNED, settlement reversed, owed again
    ADJUST_FEE = "ADJUST_FEE"  # FEE within tolerance
    RECOVER = "RECOVER"  # DUPLICATE: collect it back from the party (a transfer of its own id)
    REVIEW = "REVIEW"  # finance decides; the amount waits in suspense


@dataclass(frozen=True)
class Policy:
    """From the tenant file. `fee_tolerance`: per currency, the largest |fee difference| (minor
    units) adjusted without a person; `duplicates`: "recover" or "review"."""

    fee_tolerance: dict[str, int] = field(default_factory=dict)
    fee_bearer: str = "platform"  # who bears a fee difference within tolerance
    duplicates: str = "recover"
    timing_days: int = 2  # a TIMING still waiting this many days after its date is escalated


@dataclass(frozen=True)
class Compensation:
    compensation_id: str
    exception_id: str
    action: Action
    review: bool  # waits for finance (the exception stays OPEN)
    journal: Journal | None = None
    transfer: dict | None = None  # RESEND (our id) or RECOVER (a derived id): what to send
    due_date: str | None = None  # RETURN_AND_REVERSE: the day the party is owed again (next run)
    note: str = ""


def compensation_id(exception_id: str, action: Action) -> str:
    return f"cmp_{hashlib.sha256(f'{exception_id}|{action}'.encode()).hexdigest()[:24]}"


def decide(exc: ReconException, policy: Policy, *, today: str) -> Compensation:
    """The action for one exception, as of `today` (the day of the run that looks at it)."""
    handler = _HANDLERS[exc.cls]
    return handler(exc, policy, today)


def after_query(exc: ReconException, answer: Receipt | None) -> Compensation:
    """MISSING_AT_CHANNEL once the channel was asked by our id: it never had it -> send the same
    instruction again (the same id: the channel's idempotency makes a second send harmless); it has
    the same payment -> match it again (a later file will show it); it holds another payment under
    our id -> review (never paper over it, see InstructionMismatch)."""
    ours = exc.ours or {}
    if answer is None:
        transfer = resend_transfer(ours)
        return _make(exc, Action.RESEND, review=False, transfer=transfer, note="the channel never had it")
    same = (answer.amount, answer.currency, str(answer.direction)) == (
        ours["amount"],
        ours["currency"],
        ours["direction"],
    )
    if same:
        return _make(
            exc, Action.REMATCH, review=False, note=f"the channel has it as {answer.channel_reference}"
        )
    return _make(exc, Action.REVIEW, review=True, note="the channel holds another payment under our id")


def resend_transfer(ours: dict) -> dict:
    """What a RESEND sends, automatic (after_query) or finance's: our transfer's own instruction, under
    its own id (the channel's idempotency key: a second send of it moves nothing twice), with the fee
    the instruction carried (a party-borne fee the channel states on its line)."""
    transfer = {k: ours[k] for k in ("instruction_id", "run_id", "party", "direction", "amount", "currency")}
    if ours.get("fee"):
        transfer["fee"] = int(ours["fee"])
    return transfer


# -- per class ---------------------------------------------------------------------------------


def _timing(exc, policy, today):
    if exc.facts.get("waiting"):
        days_open = (date.fromisoformat(today) - date.fromisoformat(exc.date)).days
        if days_open >= policy.timing_days:
            return _make(
                exc, Action.ESCALATE, review=True, note=f"not on any statement {days_open} days after"
            )
        return _make(exc, Action.HOLD, review=False, note="matched against the next days' files")
    if exc.facts.get("beyond_drift"):
        return _make(
            exc, Action.ESCALATE, review=True, note="booked further from our date than the drift allows"
        )
    return _make(
        exc, Action.CLOSE, review=False, note="booked on a neighbouring day (cut-off); the money moved"
    )


def _missing(exc, policy, today):
    return _make(exc, Action.QUERY_CHANNEL, review=False, note="ask the channel by our instruction id")


def _status(exc, policy, today):
    """The transfer becomes RETURNED; its journal is reversed: the party is owed (or owes) it again
    and the next run pays it, on both statements. Not confirmed (FAILED, or returned in the same
    file): the money never left settlement:{channel}. Confirmed (earlier, or by this file's line):
    it came back to the bank. A RETURN line of a transfer whose own line FAILED is not reversed a
    second time: review."""
    if exc.facts.get("also_failed"):
        return _make(exc, Action.REVIEW, review=True, note="a return of a transfer whose own line failed")
    ours, channel = exc.ours, exc.channel
    amount, party = exc.amount_at_stake, ours["party"]
    sign = 1 if ours["direction"] == str(Direction.PAYOUT) else -1
    source = f"bank:{channel}" if exc.facts.get("confirmed") else f"settlement:{channel}"
    legs = (Leg(party, sign * amount), Leg(source, -sign * amount))
    due = (date.fromisoformat(today) + timedelta(days=1)).isoformat()
    return _make(
        exc,
        Action.RETURN_AND_REVERSE,
        review=False,
        legs=legs,
        due_date=due,
        note=f"{exc.facts.get('outcome')}",
    )


def _fee(exc, policy, today):
    difference, channel = exc.facts["difference"], exc.channel
    if abs(difference) <= policy.fee_tolerance.get(exc.currency, 0):
        legs = (Leg(f"fees:{channel}", difference), Leg(policy.fee_bearer, -difference))
        return _make(exc, Action.ADJUST_FEE, review=False, legs=legs, note=f"borne by {policy.fee_bearer}")
    legs = (Leg(f"fees:{channel}", difference), Leg(f"suspense:{channel}", -difference))
    return _make(exc, Action.REVIEW, review=True, legs=legs, note="above the tenant's fee tolerance")


def _duplicate(exc, policy, today):
    """The money moved once more than instructed: bank:{channel} records it; the party owes it back
    (a recovery collection of a derived id; for a duplicate collection, a payout back), or, where
    the tenant says so, it waits in suspense for review."""
    line, channel, party = exc.theirs, exc.channel, exc.facts["party"]
    moved = exc.amount_at_stake if line["type"] == "PAYOUT" else -exc.amount_at_stake
    if policy.duplicates == "recover":
        recovery = {
            "instruction_id": f"rcv_{exc.date.replace('-', '')}_{hashlib.sha256(exc.exception_id.encode()).hexdigest()[:20]}",
            "run_id": (exc.ours or {}).get("run_id", ""),
            "party": party,
            "direction": str(Direction.COLLECTION if moved > 0 else Direction.PAYOUT),
            "amount": exc.amount_at_stake,
            "currency": exc.currency,
        }
        legs = (Leg(f"bank:{channel}", moved), Leg(party, -moved))
        return _make(
            exc, Action.RECOVER, review=False, legs=legs, transfer=recovery, note="recovery from the party"
        )
    legs = (Leg(f"bank:{channel}", moved), Leg(f"suspense:{channel}", -moved))
    return _make(exc, Action.REVIEW, review=True, legs=legs, note="the tenant reviews duplicates")


def _suspense(exc, policy, today):
    """Review, with what moved and nobody explains booked to suspense:{channel} (挂账), so every
    balance stays true while finance looks."""
    channel, line = exc.channel, exc.theirs
    if exc.cls is C.AMOUNT_MISMATCH:
        ours = exc.ours["amount"] * (1 if exc.ours["direction"] == "PAYOUT" else -1)
        theirs = ours + exc.facts["difference"]
        legs = (
            Leg(f"settlement:{channel}", -ours),
            Leg(f"bank:{channel}", theirs),
            Leg(f"suspense:{channel}", ours - theirs),
        )
    elif exc.cls in (C.UNKNOWN_AT_CHANNEL, C.CURRENCY_MISMATCH):
        moved = line["amount"] if line["type"] == "PAYOUT" else -line["amount"]
        legs = (Leg(f"bank:{channel}", moved), Leg(f"suspense:{channel}", -moved))
    elif exc.facts.get("account"):  # settlement:{channel} is not what the unconfirmed transfers add up to
        legs = (
            Leg(exc.facts["account"], -exc.facts["difference"]),
            Leg(f"suspense:{channel}", exc.facts["difference"]),
        )
    else:  # transfer, run and postings disagree: no money moved against the ledger; nothing to book
        legs = None
    return _make(exc, Action.REVIEW, review=True, legs=legs, note=exc.detail)


def _order_review(exc, policy, today):
    """An order against its coupon: nothing moved through a channel; finance (or the merchant) decides."""
    return _make(exc, Action.REVIEW, review=True, note=exc.detail)


_HANDLERS = {
    C.TIMING: _timing,
    C.MISSING_AT_CHANNEL: _missing,
    C.STATUS_MISMATCH: _status,
    C.FEE_MISMATCH: _fee,
    C.DUPLICATE_AT_CHANNEL: _duplicate,
    C.UNKNOWN_AT_CHANNEL: _suspense,
    C.AMOUNT_MISMATCH: _suspense,
    C.CURRENCY_MISMATCH: _suspense,
    C.INTERNAL_MISMATCH: _suspense,
    C.ORDER_AMOUNT_MISMATCH: _order_review,
    C.ORDER_OUTCOME_MISSING: _order_review,
}


def _make(
    exc: ReconException, action: Action, *, review: bool, legs=None, transfer=None, due_date=None, note=""
):
    cid = compensation_id(exc.exception_id, action)
    journal = None
    if legs:
        legs = tuple(leg for leg in legs if leg.amount != 0)
        journal = Journal(
            journal_id=f"jnl_{cid}",
            source_id=exc.exception_id,
            kind=f"RECONCILIATION_{action}",
            currency=exc.currency,
            legs=legs,
            party_shares={},
            rule={"exception_class": str(exc.cls), "action": str(action)},
        ) if legs else None  # fmt: skip
    return Compensation(cid, exc.exception_id, action, review, journal, transfer, due_date, note)
