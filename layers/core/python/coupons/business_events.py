"""The business events counted as metrics (coupons.observability), one metric each, by these names: the
dashboard (infra/constructs/dashboard.py) reads the same names."""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    COUPON_ISSUED = "CouponIssued"
    COUPON_VOIDED = "CouponVoided"
    COUPON_REDEEMED = "CouponRedeemed"
    REDEMPTION_REVERSED = "RedemptionReversed"
    JOURNAL_POSTED = "JournalPosted"
    PAYOUT_SENT = "PayoutSent"  # a transfer (payout or collection) the channel accepted
    SETTLEMENT_RUN_CLOSED = "SettlementRunClosed"
    SETTLEMENT_RUN_FAILED = "SettlementRunFailed"
    RECONCILIATION_COMPLETED = "ReconciliationCompleted"
    RECONCILIATION_EXCEPTION_OPENED = "ReconciliationExceptionOpened"


__all__ = ["Event"]
