"""Settlement runs, their parties and lines, carried amounts, and settlement's claim on a posting
(coupons.data.settlement).

  SETTLEMENT#{run_id}                  / RUN               SettlementRun   gsi1: SETTLEMENTRUNS / {date}
  SETTLEMENT#{run_id}#PARTIES#{bucket} / {party}           SettlementParty
  SETTLEMENT#{run_id}#LINES#{party}    / {journal_id}      SettlementLine
  SETTLEMENT#{run_id}#HELD#{party}     / L#{journal_id}    HeldLine        a posting the run left waiting
                                       / T#{currency}      HeldTotal       their exact amount and count
  CARRY#{party}                        / {run_id}#{CUR}    CarryItem       gsi1: UNSETTLED#{shard} / ...
  ENTRIES#{account}#{shard}            / ...               PostingClaim (a ledger posting: see there)
"""

from __future__ import annotations

from coupons.data.models.base import Flag, Integer, List, MainModel, Map, Text
from coupons.domain.settlement import party_bucket


def run_pk(run_id: str) -> str:
    return f"SETTLEMENT#{run_id}"


def parties_pk(run_id: str, bucket: int | str) -> str:
    return f"SETTLEMENT#{run_id}#PARTIES#{bucket}"


def party_pk(run_id: str, party: str) -> str:
    """The partition of the party's record: its bucket's (coupons.domain.settlement.party_bucket)."""
    return parties_pk(run_id, party_bucket(party))


def lines_pk(run_id: str, party: str) -> str:
    return f"SETTLEMENT#{run_id}#LINES#{party}"


def held_pk(run_id: str, party: str) -> str:
    """What the run left waiting on a risk hold (coupons.domain.risk.holds), shown on its statement."""
    return f"SETTLEMENT#{run_id}#HELD#{party}"


def held_line_sk(journal_id: str) -> str:
    return f"{HELD_LINE_PREFIX}{journal_id}"


def held_total_sk(currency: str) -> str:
    return f"{HELD_TOTAL_PREFIX}{currency}"


def carry_pk(account: str) -> str:
    return f"CARRY#{account}"


def carry_sk(carried_from: str, currency: str) -> str:
    return f"{carried_from}#{currency}"


RUN_SK = "RUN"
HELD_LINE_PREFIX, HELD_TOTAL_PREFIX = "L#", "T#"
HELD_KIND, HELD_TOTAL_KIND = "SETTLEMENT_HELD", "SETTLEMENT_HELD_TOTAL"
RUNS_INDEX_PK = "SETTLEMENTRUNS"  # gsi1: every run, by business date
RUN_KIND, PARTY_KIND, LINE_KIND, CARRY_KIND = (
    "SETTLEMENT_RUN",
    "SETTLEMENT_PARTY",
    "SETTLEMENT_LINE",
    "CARRY_FORWARD",
)


class SettlementRun(MainModel):
    """One settlement date's run of one kind: its status and attempt, the execution running it, its
    cut-off, what it settled."""

    kind = Text()
    run_id = Text()
    business_date = Text()  # the settlement date X (its name from before cut-offs)
    settlement_date = Text(null=True)
    run_kind = Text(null=True)  # DAILY | INTRADAY (coupons.domain.timeline.RunKind)
    cutoff_at = Text(null=True)  # postings whose event came before it (a run from before cut-offs: none)
    status = Text()
    attempt = Integer()
    execution_name = Text()
    requested_at = Text()
    idempotency_ref = Text(null=True)  # "" once a later attempt is nobody's (coupons.services.settlement)
    opened_at = Text(null=True)
    resumed_at = Text(null=True)
    planned_at = Text(null=True)  # claims closed (coupons.data.settlement)
    party_count = Integer(null=True)
    batches = Integer(null=True)
    closed_at = Text(null=True)
    totals = List(null=True)  # per currency: {"currency", "lines", "net", "payouts", ...}, integers
    failed_at = Text(null=True)
    error = Map(null=True)  # {"error", "cause"}
    completion_event_error = Map(null=True)  # {"error", "cause"}


class SettlementParty(MainModel):
    """A party of a run: per currency its netting, decision and transfer (`currencies`: currency → {net,
    lines, decision, transfer, carried, status, instruction_id, channel_reference, instructed_at,
    sent_at}), its statement's keys, when it was settled."""

    kind = Text()
    run_id = Text()
    party = Text()
    created_at = Text()
    currencies = Map(null=True)
    statement = Map(null=True)  # format → S3 key
    settled_at = Text(null=True)
    held = Flag(null=True)  # some of its postings wait on a hold (HeldLine / HeldTotal): absent when none


class SettlementLine(MainModel):
    """A copy of a posting the run claimed (what a statement shows), and where the posting is."""

    kind = Text()
    run_id = Text()
    posting_pk = Text()
    posting_sk = Text()
    account = Text()
    currency = Text()
    amount = Integer()
    journal_id = Text()
    source_id = Text(null=True)
    source_kind = Text(null=True)
    redemption_id = Text(null=True)
    reversal_id = Text(null=True)
    order_id = Text(null=True)
    code = Text(null=True)
    campaign_id = Text(null=True)
    brand_id = Text(null=True)
    merchant_id = Text(null=True)
    store_id = Text(null=True)
    business_date = Text(null=True)
    due_date = Text(null=True)
    rule_id = Text(null=True)
    rule_version = Integer(null=True)
    commission = Integer(null=True)
    carried_from = Text(null=True)


class HeldLine(MainModel):
    """A posting the run's claim left waiting (not claimed: it stays unsettled and due), and why. Its
    key is the posting's journal id: written once per run, so a retried claim does not count it twice."""

    kind = Text()
    run_id = Text()
    account = Text()
    currency = Text()
    amount = Integer()
    journal_id = Text()
    source_id = Text(null=True)
    source_kind = Text(null=True)
    redemption_id = Text(null=True)
    reversal_id = Text(null=True)
    business_date = Text(null=True)
    due_date = Text(null=True)
    review_hold = Text(null=True)
    held_because = Map()  # {"hold_id", "reason"} or {"review_hold"}


class HeldTotal(MainModel):
    """What waits of one party in one currency in the run, exactly (the statement lists only the
    first lines): ADDed in the transaction that writes each HeldLine."""

    kind = Text()
    run_id = Text()
    party = Text()
    currency = Text()
    amount = Integer()
    count = Integer()


class _Claimable(MainModel):
    """What settlement writes on an item it claims and settles (a ledger posting, a carried amount)."""

    run_id = Text(null=True)
    claimed_at = Text(null=True)
    settled = Flag(null=True)
    settled_at = Text(null=True)
    left_by_payout = Text(null=True)  # an instant payout that gave it back (coupons.data.instant)


class CarryItem(_Claimable):
    """An amount a party carries into the next run: an unsettled posting of its own (in the unsettled
    index like a ledger posting, claimed and settled like one), not a ledger posting."""

    kind = Text()
    source_kind = Text()
    account = Text()
    amount = Integer()
    currency = Text()
    journal_id = Text()
    source_id = Text()
    carried_from = Text()
    business_date = Text()
    due_date = Text()


class PostingClaim(_Claimable):
    """Settlement's view of a ledger posting (coupons.data.ledger owns the item and its model): only the
    attributes settlement's updates name. Never saved whole, never used to decode a posting (it would
    drop the rest)."""
