"""Clearing (清分): one balanced journal per redemption or reversal, exactly once.

Called once per stream record (functions/clearing). Delivery is at least once, so everything here is
safe to run again: journal ids derive from the source record and the journal is written under
`attribute_not_exists`. A record whose journal is posted is a duplicate whatever it holds: that is read
first, before anything that could fail on the record's content (a reversal rebuilt after it was posted
would split over what it has itself given back already, and fail), so a redelivery never fails.

The same transaction takes the source item (the redemption / reversal, keyed by the record's pk/sk)
out of the clearing-pending index; a record whose item is not in the table fails (SourceMissing).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError

from coupons.data.commission import CommissionStore
from coupons.data.ledger import POSTING_EXTRA, AlreadyPosted, LedgerStore, ReversalsMoved, SourceMissing
from coupons.data.models.base import conflicted
from coupons.domain import commission, funding, ledger
from coupons.domain.calendars import BusinessCalendar, due_date
from coupons.domain.campaigns import CampaignType
from coupons.domain.coupons import iso
from coupons.domain.times import parse as _parse
from coupons.services.instant_pending import PendingCounter

# The attribute each record's journal id derives from.
SOURCE_IDS = {"REDEMPTION": "redemption_id", "REVERSAL": "reversal_id"}
# Reversals of one redemption racing each other: each retry re-reads what is left cleared.
REVERSAL_ATTEMPTS = 8
# A journal's transaction cancelled by another's on one of its items (TransactionConflict): tried again.
CONFLICT_ATTEMPTS = 5
# A campaign without a funding rule is funded wholly by its brand (the party that runs it).
BRAND_FUNDS_ALL = funding.Shares(PLATFORM=0, BRAND=10_000, MERCHANT=0)


class UnknownFundingRule(Exception):
    """The record names a rule that does not exist (or has no version at its time): a poison record."""


class MalformedRecord(Exception):
    """The record lacks the id its journal derives from: a poison record."""


class RedemptionNotCleared(Exception):
    """A reversal arrived before its redemption's journal: fail this record, it is retried later."""


class Clearer:
    def __init__(
        self,
        ledger_store: LedgerStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        calendar: BusinessCalendar | None = None,
        commission: CommissionStore | None = None,
        pending: PendingCounter | None = None,
    ):
        """`calendar`: the tenant's holiday calendar (T+N in business days); None: calendar days.
        `commission`: the platform's commission schedule; None: no commission. `pending`: the instant
        threshold's counting (a tenant with a `flush_threshold`); None: nothing counted."""
        self._ledger = ledger_store
        self._commission = commission
        self._clock = clock
        self._calendar = calendar
        self._pending = pending

    def clear(self, record: dict[str, Any]) -> str:
        """Posts the record's journal. Returns "posted", "duplicate" or "skipped" (not ours)."""
        kind = record.get("kind")
        if kind not in SOURCE_IDS:
            return "skipped"
        source_id = record.get(SOURCE_IDS[kind])
        if not isinstance(source_id, str) or not source_id:
            raise MalformedRecord(f"a {kind} record without its {SOURCE_IDS[kind]}")
        if kind == "REDEMPTION":
            return self._redemption(record, ledger.journal_id(source_id))
        return self._reversal(record, ledger.journal_id(source_id))

    def _redemption(self, redemption: dict[str, Any], own_id: str) -> str:
        if self._ledger.journal(own_id) is not None:
            return "duplicate"  # posted before: nothing the record holds is read again
        at = _parse(redemption["redeemed_at"])
        rule, shares = self._shares(redemption, at)
        charge = self._charge(redemption, at)
        journal = ledger.redemption_journal(redemption, shares, rule, commission=charge)
        if charge is not None:
            # What a reversal needs to give back its part: the order the commission was charged on.
            record = {**journal.charges["commission"], "order_amount": redemption["order_amount"]}
            journal = replace(journal, charges={"commission": record})
        return self._post(journal, redemption)

    def _charge(self, redemption: dict[str, Any], at: datetime) -> commission.Commission | None:
        """The commission of the version in force at the redemption's time (versions never reach back,
        so a version written after the redemption was made cannot apply to it)."""
        if self._commission is None:
            return None
        versions = self._commission.versions()
        return commission.for_redemption(versions, redemption, at) if versions else None

    def _shares(
        self, redemption: dict[str, Any], at: datetime
    ) -> tuple[dict[str, Any], funding.Shares | None]:
        rule_id = redemption.get("funding_rule_id")
        if rule_id is None:
            if redemption.get("coupon_type") == CampaignType.GIFT_CARD:
                return {"rule_id": None, "source": "gift_card: brand owes merchant"}, None
            return {"rule_id": None, "source": "no rule: brand funds all"}, BRAND_FUNDS_ALL
        found = self._ledger.rule(rule_id)
        if found is None:
            raise UnknownFundingRule(f"funding rule {rule_id} does not exist")
        _, versions = found
        try:
            version = funding.version_in_force(versions, at)
        except funding.FundingRuleNotFound:
            raise UnknownFundingRule(f"funding rule {rule_id} has no version in force at {at}") from None
        shares, source = funding.shares_for(version, merchant_id=redemption["merchant_id"], at=at)
        return {"rule_id": rule_id, "version": version["version"], "source": source}, shares

    def _reversal(self, reversal: dict[str, Any], own_id: str) -> str:
        redemption_id = reversal.get("redemption_id")
        cleared_id = ledger.journal_id(redemption_id) if redemption_id else None
        for _ in range(REVERSAL_ATTEMPTS):
            # Read together, as of one moment: posted already (a redelivery: the redemption's journal
            # then counts this reversal's own give-back, and rebuilding it would fail) or not, and
            # what the parties have left cleared if not.
            read = self._ledger.journals([own_id] + ([cleared_id] if cleared_id else []))
            if own_id in read:
                return "duplicate"
            if cleared_id is None:
                raise MalformedRecord(f"reversal {reversal['reversal_id']} names no redemption")
            cleared = read.get(cleared_id)
            if cleared is None:
                raise RedemptionNotCleared(f"{reversal['redemption_id']} is not cleared yet")
            charged = (cleared.get("charges") or {}).get("commission")
            back, refund = 0, None
            if charged and charged.get("amount"):
                refund = reversal["refund_amount"]
                back = commission.given_back(
                    charged=charged["amount"],
                    given_back_before=cleared.get("commission_given_back", 0),
                    order_amount=charged["order_amount"],
                    refunded_before=cleared.get("refunded", 0),
                    refund=refund,
                )
            journal = ledger.reversal_journal(
                reversal, cleared["party_shares"], cleared["reversed"], cleared["rule"], commission_back=back
            )
            # A refund of a redemption held for review nets against it: it waits with it.
            source = (
                {**reversal, "review_hold": cleared["review_hold"]}
                if cleared.get("review_hold")
                else reversal
            )
            try:
                return self._post(
                    journal, source, reversal_of=(cleared_id, cleared["reversal_count"]), refund=refund
                )
            except ReversalsMoved:
                continue
        raise ReversalsMoved()

    def _post(self, journal: ledger.Journal, source: dict[str, Any], **kwargs: Any) -> str:
        if "pk" not in source or "sk" not in source:
            raise SourceMissing(f"the {journal.kind} record {journal.source_id} carries no pk/sk")
        # What postings carry for statements, and the cycle the journal records.
        extra = {
            **{k: source[k] for k in (*POSTING_EXTRA, "settlement_cycle") if k in source},
            # The event's time, for a run's cut-off (coupons.domain.timeline).
            "event_at": source.get("redeemed_at") or source.get("reversed_at"),
        }
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            now = self._clock()
            also = (
                self._pending.writes(journal, business_date=source["business_date"], extra=extra, at=now)
                if self._pending is not None
                else []
            )
            try:
                self._ledger.post(
                    journal,
                    business_date=source["business_date"],
                    due_date=due_date(source["business_date"], source["settlement_cycle"], self._calendar),
                    posted_at=iso(now),
                    source_key={"pk": source["pk"], "sk": source["sk"]},
                    extra=extra,
                    also=also,
                    **kwargs,
                )
            except AlreadyPosted:
                return "duplicate"
            except TransactWriteError as error:
                # Another journal's transaction held one of our items at that moment (the party's pending
                # total of the window is one item per party: the hottest): nothing was written; again.
                if attempt == CONFLICT_ATTEMPTS or not conflicted(error):
                    raise
                time.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311 (jitter, not a secret)
                continue
            return "posted"
        raise AssertionError("unreachable")
