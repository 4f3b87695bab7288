"""Instant settlement (即时到账): which postings an instant payout takes, its id, when it is due (pure).

A merchant (the tenant file's default, or its own setting) or a campaign may be INSTANT: a merchant's
redemption posting is instant when its merchant's mode in force is INSTANT or its campaign's is. Those
postings are paid as they clear, in micro-batches per party, by the instant payout function (coupons.services.instant) fed
by the table's stream through a batching window. An instant payout is a settlement "run" of one party
(the same claim rule: a posting belongs to at most one payout or run), its id derived from the party
and the window its postings were delivered in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

PAYOUT_PREFIX = "ipo_"
# Of the payouts of one party and window, the n-th (a later one exists only when another batch's
# payout for that window had closed its claims before this batch could claim into it).
MAX_PAYOUTS_PER_WINDOW = 20


class SettlementMode(StrEnum):
    SCHEDULED = "SCHEDULED"
    INSTANT = "INSTANT"


@dataclass(frozen=True)
class InstantTerms:
    """The tenant's instant settlement terms (the tenant file's `instant_settlement`).

    `window_seconds`: the longest a cleared posting waits (the event source's batching window: 60 on
    AWS, shorter locally for tests); `minimums`: the smallest instant payout per currency (none unless
    the tenant sets one: the scheduled runs' minimum transfer does not apply); `max_attempts`: failed
    attempts before a payout's postings are given back to the scheduled runs; `thresholds`: per
    currency, the pending amount of a party in one window that flushes it at once (none: windows only)."""

    default_mode: SettlementMode = SettlementMode.SCHEDULED
    window_seconds: int = 60
    minimums: dict[str, int] = field(default_factory=dict)
    max_attempts: int = 3
    thresholds: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.window_seconds <= 60:
            raise ValueError("the batching window is 1..60 s")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in self.minimums.values()):
            raise ValueError("minimums are non-negative integers in minor units")
        if not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in self.thresholds.values()
        ):
            raise ValueError("flush thresholds are positive integers in minor units")
        if self.max_attempts < 1:
            raise ValueError("an instant payout makes at least one attempt")


def is_payout(run_id: str | None) -> bool:
    """Whether a posting's `run_id` names an instant payout (else a scheduled run, or nobody)."""
    return bool(run_id) and run_id.startswith(PAYOUT_PREFIX)


def window_start(at: datetime, seconds: int) -> datetime:
    """The start of the window `at` falls in: windows are fixed, aligned on the epoch (UTC)."""
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def payout_id(party: str, window: datetime, n: int = 1) -> str:
    """`ipo_{YYYYMMDDHHMMSS}_{sha256(party)[:16]}_{n}`: derived from party and window, so a redelivered
    batch computes the same payout and finds what it did. The date part keeps instruction ids
    (`ins_{run[4:]}_…`, coupons.domain.settlement.instruction_id) starting with the day."""
    if not 1 <= n <= MAX_PAYOUTS_PER_WINDOW:
        raise ValueError(f"a window has at most {MAX_PAYOUTS_PER_WINDOW} payouts per party")
    digest = hashlib.sha256(party.encode()).hexdigest()[:16]
    return f"{PAYOUT_PREFIX}{window.astimezone(UTC):%Y%m%d%H%M%S}_{digest}_{n}"


FLUSH_MARK = "f"  # a threshold flush's payout: `ipo_{window}_{party hash}_f{currency}`


def flush_payout_id(party: str, currency: str, window: datetime) -> str:
    """The threshold flush's payout of a party, currency and window (coupons.data.instant_pending): one
    per window at most (the total crosses its threshold once), derived from all three, so a redelivered
    crossing finds it. Never one of the window's payouts (those end in a number): a posting belongs to
    whichever of them claims it first."""
    digest = hashlib.sha256(party.encode()).hexdigest()[:16]
    return f"{PAYOUT_PREFIX}{window.astimezone(UTC):%Y%m%d%H%M%S}_{digest}_{FLUSH_MARK}{currency}"


def counts_toward_flush(posting: dict[str, Any], thresholds: dict[str, int]) -> bool:
    """Whether clearing counts a new posting into its party's pending total: one an instant payout
    takes, in a currency with a threshold. Clearing knows no modes (it reads none): a SCHEDULED
    merchant's postings count too, and the flush pays only the instant ones among them."""
    return posting.get("currency") in thresholds and takes(posting)


def takes(posting: dict[str, Any]) -> bool:
    """What an instant payout takes: a merchant's redemption posting it is owed (> 0). Reversals and
    anything a party owes wait for the scheduled run, which nets them against what else is due (an
    instant payout never collects from a merchant)."""
    return (
        str(posting.get("account", "")).startswith("merchant:")
        and posting.get("source_kind") == "REDEMPTION"
        and int(posting.get("amount", 0)) > 0
        and not posting.get("review_hold")  # a REVIEW redemption waits for its release, as in runs
    )


def is_instant(
    posting: dict[str, Any],
    merchant_modes: dict[str, str],
    campaign_modes: dict[str, str],
    default: SettlementMode,
) -> bool:
    """Whether an instant payout pays this posting: one it `takes`, whose merchant's mode in force (its
    own, else the tenant's `default`) is INSTANT, or whose campaign's mode is INSTANT (a campaign's
    SCHEDULED, or none, adds nothing: the merchant's mode decides)."""
    if not takes(posting):
        return False
    merchant = merchant_modes.get(merchant_of(posting["account"]), default)
    campaign = campaign_modes.get(posting.get("campaign_id") or "")
    return SettlementMode.INSTANT in (merchant, campaign)


def instant_by_party(
    postings: Iterable[dict[str, Any]],
    merchant_modes: dict[str, str],
    campaign_modes: dict[str, str],
    default: SettlementMode,
) -> dict[str, list[dict[str, Any]]]:
    """The instant postings (is_instant) per party, as by_party orders them; parties with none left out."""
    parties = {
        party: [p for p in found if is_instant(p, merchant_modes, campaign_modes, default)]
        for party, found in by_party(postings).items()
    }
    return {party: found for party, found in parties.items() if found}


def merchant_of(party: str) -> str:
    return party.split(":", 1)[1]


def by_party(postings: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The postings an instant payout may take, per party, each party's in journal id order (one
    journal is one posting per account, so a journal id names a party's posting)."""
    parties: dict[str, dict[str, dict[str, Any]]] = {}
    for posting in postings:
        if takes(posting):
            parties.setdefault(posting["account"], {})[posting["journal_id"]] = posting
    return {party: [found[j] for j in sorted(found)] for party, found in sorted(parties.items())}


def pending(postings: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Per currency, what the postings sum to."""
    totals: dict[str, int] = {}
    for posting in postings:
        totals[posting["currency"]] = totals.get(posting["currency"], 0) + int(posting["amount"])
    return totals


def payable(postings: list[dict[str, Any]], minimums: dict[str, int]) -> tuple[list[dict], list[dict]]:
    """(what the payout takes, what it leaves to the scheduled run): a currency whose sum is below the
    tenant's instant minimum is left (unclaimed: it stays in the unsettled index)."""
    sums = pending(postings)
    taken = [p for p in postings if sums[p["currency"]] >= minimums.get(p["currency"], 0)]
    left = [p for p in postings if sums[p["currency"]] < minimums.get(p["currency"], 0)]
    return taken, left


def statement_day(at: datetime, zone) -> str:
    """The business date (the tenant's zone) whose instant statement a payout appends to."""
    return at.astimezone(zone).date().isoformat()


__all__ = [
    "InstantTerms", "MAX_PAYOUTS_PER_WINDOW", "PAYOUT_PREFIX", "SettlementMode", "by_party", "instant_by_party",
    "is_instant", "is_payout", "merchant_of", "payable", "payout_id", "pending", "statement_day", "takes", "window_start",
]  # fmt: skip
