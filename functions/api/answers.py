"""What each route answers, as response models for the OpenAPI document (routes/meta.py).

Each model names the fields a client may rely on; answers may carry more (additionalProperties), so
a field added later breaks no generated client. The conformance tests check every answer the
integration and e2e tests receive against these."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from coupons.domain.campaigns import Campaign, MerchantCampaignView


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Page(_Open):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at the end")


class CampaignPage(Page):
    """Campaigns newest first, without live counters."""


class Coupon(_Open):
    """A coupon; a merchant sees the till's view (code, state, validity, terms, eligible_here)."""

    code: str
    campaign_id: str
    state: Literal["ISSUED", "HELD", "REDEEMED", "PARTIALLY_USED", "EXPIRED", "VOID"]


class IssuedCoupon(Coupon):
    display_code: str = Field(description="the code in groups of four, for print")


class BulkIssue(_Open):
    """Each user's outcome of a bulk issue."""

    results: list[dict[str, Any]] | None = None


class CouponPage(Page):
    """A user's coupons, newest first."""


class QrToken(_Open):
    qr_token: str = Field(description="signed, single-use; show it as a QR code at the till")
    expires_at: int = Field(description="Unix seconds; refused from this second on")
    code: str


class DynamicCode(_Open):
    otpauth_uri: str = Field(description="otpauth://totp/… with the coupon's secret (an authenticator app)")
    code: str


class ApiKey(_Open):
    key_id: str
    principal: str


class ApiKeyCreated(ApiKey):
    api_key: str | None = Field(
        default=None, description="the plain key: in the first answer only (absent from a replay)"
    )


class FundingRule(_Open):
    rule_id: str
    versions: list[dict[str, Any]] | None = None


class CommissionSchedule(_Open):
    versions: list[dict[str, Any]]


class Quote(_Open):
    code: str
    campaign_id: str
    currency: str
    discount: int = Field(description="minor units")
    payable: int = Field(description="order_amount - discount, minor units")


class Redemption(_Open):
    redemption_id: str
    code: str
    discount: int = Field(description="minor units; a hold's: the amount held")
    status: Literal["HELD", "CAPTURED", "VOIDED", "EXPIRED"] | None = Field(
        default=None, description="a redemption hold's state; absent for a redemption captured when made"
    )
    held_amount: int | None = Field(default=None, description="a hold: the amount reserved, minor units")
    hold_expires_at: str | None = Field(
        default=None, description="a hold: from this moment it cannot be captured, and it releases itself"
    )


class _HoldEnd(_Open):
    """What a capture or void answers: what the request and the hold's id know (a merchant's capture or
    void reads nothing). The campaign, the parties and the order: GET /v1/redemptions/{id}."""

    redemption_id: str = Field(description="the hold's id (hld_…, sealed), the redemption's once captured")
    status: Literal["CAPTURED", "VOIDED"]
    code: str
    coupon_type: str | None = Field(default=None, description="FIXED, PERCENT, THRESHOLD or GIFT_CARD")
    currency: str
    discount: int = Field(description="minor units: what was captured (a void: the amount held)")
    held_amount: int = Field(description="the amount the hold reserved, minor units")
    released_amount: int = Field(description="what is available again, minor units")
    hold_expires_at: str
    closed_at: str = Field(description="when it was captured or voided")


class CapturedHold(_HoldEnd):
    status: Literal["CAPTURED"]
    captured_amount: int = Field(description="what the redemption takes (what clears), minor units")
    released_amount: int = Field(description="the rest of the hold, available again, minor units")
    redeemed_at: str = Field(description="the capture's moment: the redemption's")
    business_date: str = Field(description="the redemption's business date (the capture's, tenant time)")
    coupon_state_after: str = Field(description="REDEEMED, or a gift card with balance left PARTIALLY_USED")


class ReleasedHold(_HoldEnd):
    status: Literal["VOIDED"]
    released_amount: int = Field(description="the amount held, available again, minor units")


class Clearing(_Open):
    status: Literal["PENDING", "CLEARED"]


class Reversal(_Open):
    reversal_id: str
    redemption_id: str
    refund_amount: int = Field(description="the part of the order refunded, minor units")
    discount_reversed: int = Field(description="the part of the discount given back, minor units")


class RedemptionDetail(Redemption):
    reversals: list[Reversal] = Field(description="the first 20 reversals, oldest first")
    reversals_next_cursor: str | None = Field(
        default=None, description="where GET …/reversals?cursor= continues; null when all are shown"
    )
    clearing: Clearing


class ReversalPage(_Open):
    items: list[Reversal]
    next_cursor: str | None = Field(
        default=None, description="pass as ?cursor= for the next page; null at the end"
    )


class CouponHistoryPage(Page):
    """A coupon's events, newest first."""


class SettlementRun(_Open):
    run_id: str = Field(description="stl_{YYYYMMDD} (daily) or stl_{YYYYMMDD}_t0 (intraday)")
    business_date: str = Field(description="the settlement date X (the name runs had before cut-offs)")
    settlement_date: str | None = Field(default=None, description="the settlement date X")
    run_kind: str | None = Field(default=None, description="DAILY or INTRADAY")
    cutoff_at: str | None = Field(
        default=None, description="the run takes postings whose event came before it"
    )
    status: str


class SettlementRunStarted(SettlementRun):
    started: bool = Field(description="whether an execution was started by this request")


class SettlementRunDetail(SettlementRun):
    next_cursor: str | None


class StatementHeld(_Open):
    """What of the party's postings the run left waiting on a risk hold, in one currency (in no total:
    the run after the release settles them)."""

    currency: str
    amount: int = Field(description="minor units, exact: what waits, netted")
    count: int = Field(description="how many postings wait (exact)")
    lines: list[dict[str, Any]] = Field(
        description="the first 100 of them, each with held_because ({hold_id, reason} or {review_hold})"
    )
    unlisted: int | None = Field(default=None, description="how many more wait than are listed")


class MerchantSettlement(_Open):
    merchant_id: str
    mode: str = Field(description="SCHEDULED (paid by settlement runs) or INSTANT (paid as it clears)")
    source: str = Field(description="merchant: its own setting; tenant: the tenant file's default")


class CampaignSettlement(_Open):
    campaign_id: str
    mode: str = Field(
        description="INSTANT: its merchants' redemption postings are paid as they clear, whatever their own "
        "mode; SCHEDULED: nothing added (each merchant's own mode decides)"
    )
    source: str = Field(description="campaign: its own setting; default: none set")


class InstantStatement(_Open):
    party: str
    date: str
    payouts: list[dict[str, Any]] = Field(description="each instant payout of the day, per currency")
    totals: list[dict[str, Any]] = Field(
        description="per currency: amount, transferred, fee, payouts, postings"
    )


class Statement(_Open):
    run_id: str
    party: str
    held: list[StatementHeld] | None = Field(
        default=None, description="per currency what waits on a hold (absent when nothing does)"
    )


class Balance(_Open):
    account: str
    balances: list[dict[str, Any]] | dict[str, Any]


class EntryPage(Page):
    """Postings with business dates in [from, to]."""


class TraceStep(_Open):
    step: str = Field(
        description="issued | verified | risk_decision | redeemed | reversed | cleared | claimed | settled | "
        "reconciled | reconciliation_exception | voided"
    )
    at: str | None
    actor: str | None = Field(description="the principal, or the function (clearing, settlement), that acted")
    audit_entry_ids: list[str] = Field(description="GET /v1/audit/entries/{id} proves each")


class Trace(_Open):
    steps: list[TraceStep]


class AuditEntry(_Open):
    """An audit entry and, once a signed head covers it, what proves it is in the log (docs/audit.md)."""

    entry_id: str
    log_id: str
    shard: int
    seq: int
    entry: dict[str, Any] = Field(description="the entry: seq, time, kind (change | api_call), fields")
    entry_bytes: str = Field(description="base64 of the entry's exact canonical bytes (RFC 8785 JSON)")
    leaf_hash: str = Field(description="hex SHA-256(0x00 || entry_bytes)")
    status: Literal["SIGNED", "PENDING_SIGNATURE"]
    proof: dict[str, Any] | None = Field(
        description="inclusion path in the shard tree, the shard head's path in the signed head, the signed "
        "head, its signature (ECDSA_SHA_256, DER) and the public key; null until a head covers the entry"
    )


class RiskListEntry(_Open):
    """A value on a block or allow list (risk control)."""

    list: str
    value: str
    reason: str
    expires_at: str | None = Field(default=None, description="when the entry stops counting; null: never")


class RiskDecisionPage(Page):
    """A subject's risk decisions, newest first: action, rule_id, rule_version, reason, source_id."""


class RiskHold(_Open):
    """A party's settlement hold: HELD until released (then RELEASED, with who and when)."""

    hold_id: str
    party: str
    reason: str
    status: Literal["HELD", "RELEASED"]
    held_by: str
    held_at: int = Field(description="epoch seconds")
    released_by: str | None = None
    released_at: int | None = Field(default=None, description="epoch seconds; runs after it settle the party")


class RiskReviewRelease(_Open):
    """A REVIEW redemption's release: the next settlement run takes its postings."""

    redemption_id: str
    review_hold: str
    released_by: str
    released_at: int = Field(description="epoch seconds")
    reason: str


class RiskHeldSection(_Open):
    currency: str
    amount: int = Field(description="minor units: what waits on a hold, netted")
    lines: list[dict[str, Any]] = Field(description="each held posting, with held_because")


class RiskHeld(_Open):
    """A party's holds and what of its unsettled postings waits on one (its statement's held section)."""

    party: str
    holds: list[RiskHold]
    held: list[RiskHeldSection]


class RiskRuleSet(_Open):
    """A tenant's rule set version, rules in the order they are evaluated (the first that holds decides)."""

    version: int
    rules: list[dict[str, Any]]


class ReconciliationRun(_Open):
    run_id: str
    channel: str
    statement_date: str
    status: str


class ReconciliationRunPage(Page):
    """Reconciliation runs, newest statement date first."""


class ReconciliationException(_Open):
    exception_id: str
    date: str
    channel: str
    status: str
    amount_at_stake: int
    currency: str
    allowed_actions: list[str]


class ReconciliationExceptionPage(Page):
    """Exceptions, newest date first."""


class OrderEventResult(_Open):
    event_id: str
    order_id: str
    type: str
    recorded: bool = Field(description="false: the same event was reported before (nothing done again)")
    effects: dict[str, dict[str, str]] = Field(
        description="per redemption made against the order: the reversal it made, the exception it opened"
    )


class OrderEventsRecorded(_Open):
    items: list[OrderEventResult]


__all__ = [
    "OrderEventResult",
    "OrderEventsRecorded",
    "ApiKey",
    "AuditEntry",
    "ApiKeyCreated",
    "Balance",
    "BulkIssue",
    "CapturedHold",
    "ReleasedHold",
    "Campaign",
    "CampaignPage",
    "Coupon",
    "CouponPage",
    "DynamicCode",
    "EntryPage",
    "FundingRule",
    "CommissionSchedule",
    "IssuedCoupon",
    "MerchantCampaignView",
    "QrToken",
    "ReconciliationException",
    "ReconciliationExceptionPage",
    "ReconciliationRun",
    "ReconciliationRunPage",
    "Quote",
    "Redemption",
    "RedemptionDetail",
    "Reversal",
    "ReversalPage",
    "RiskDecisionPage",
    "RiskHeld",
    "RiskHold",
    "RiskReviewRelease",
    "RiskListEntry",
    "RiskRuleSet",
    "SettlementRun",
    "SettlementRunDetail",
    "SettlementRunStarted",
    "Statement",
    "StatementHeld",
    "Trace",
    "TraceStep",
]


def documented(*answers: tuple[int, type[BaseModel] | None, str], media: str = "application/json") -> dict:
    """A route's `responses=`: (status, model or None for no body, description) for each success."""
    return {
        status: {"description": description, **({"content": {media: {"model": model}}} if model else {})}
        for status, model, description in answers
    }
