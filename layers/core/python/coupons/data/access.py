"""Who may write which items of the main table: the partition-key prefixes of each writer, said once.

The functions' roles (infra/constructs: api.py, clearing.py, settlement.py) allow their writes only on
these prefixes (`ForAllValues:StringLike` on `dynamodb:LeadingKeys`), and a test runs the real flows
recording every key written, checking each against its writer's prefixes here
(tests/integration/test_write_access.py). A new item family is one line below, under every writer
that writes it; patterns come from the stores' key functions where they have one.

Patterns are IAM `StringLike`: `*` any characters (`#` included), `?` exactly one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coupons.data.models.api_keys import api_key_pk
from coupons.data.models.campaigns import campaign_pk, shard_pk, tag_pk
from coupons.data.models.commission import SCHEDULE_PK as COMMISSION_PK
from coupons.data.models.coupons import coupon_pk, history_pk, holding_pk
from coupons.data.models.funding import rule_pk
from coupons.data.models.idempotency import idempotency_pk
from coupons.data.models.instant import instant_statement_pk, merchant_settlement_pk, pending_pk
from coupons.data.models.ledger import ENTRIES as ENTRIES_PREFIX
from coupons.data.models.ledger import balance_pk, journal_pk
from coupons.data.models.orders import order_pk
from coupons.data.models.reconciliation import compensation_pk, exception_pk, recon_run_pk, transfer_state_pk
from coupons.data.models.redemptions import qr_token_pk, redemption_pk
from coupons.data.models.risk import (
    HOLDS_PK,
    RULES_PK,
    baseline_pk,
    counter_pk,
    decision_pk,
    entry_pk,
    guess_pk,
    review_pk,
    seen_pk,
)
from coupons.data.models.settlement import carry_pk, held_pk, lines_pk, parties_pk, run_pk

# A run id is `stl_{YYYYMMDD}` (daily) or `stl_{YYYYMMDD}_t0` (intraday; coupons.domain.settlement.run_id):
# the exact `?` count keeps the run's own item apart from its parties' and lines' partitions, which start
# with the run's pk. Each settlement partition is therefore named for both kinds.
_RUN = "stl_????????"
_RUN_T0 = "stl_????????_t0"
# An instant payout is a settlement run of one party: `ipo_{window}_{party hash}_{n}`
# (coupons.domain.instant.payout_id).
_PAYOUT = "ipo_*"


@dataclass(frozen=True)
class Partition:
    pattern: str  # IAM StringLike pattern of the partition key
    what: str  # the items, and why the writer writes them
    more: tuple[str, ...] = ()  # further patterns of the same family (an intraday run's items)

    @property
    def patterns(self) -> tuple[str, ...]:
        return (self.pattern, *self.more)


# -- the item families -----------------------------------------------------------------------
CAMPAIGN = Partition(campaign_pk("*"), "campaigns: created, paused, resumed, ended")
CAMPAIGN_TAG = Partition(tag_pk("*"), "a campaign's code tag, unique per tenant")
QUOTA = Partition(shard_pk("*", "*"), "quota shards: issue takes a unit, status follows the campaign")
COUPON = Partition(coupon_pk("*"), "coupons: issued, held, redeemed, voided, given back by a reversal")
HISTORY = Partition(history_pk("*"), "a coupon's history events, written with the change they record")
HOLDING = Partition(holding_pk("*", "*"), "how many coupons of a campaign a user holds")
REDEMPTION = Partition(redemption_pk("*"), "redemptions, their holds and reversals (one partition each)")
QR_TOKEN = Partition(qr_token_pk("*"), "a used QR token's nonce (coupons.data.redemptions)")
IDEMPOTENCY = Partition(idempotency_pk("*", "*"), "Idempotency-Key records and their answers")
API_KEY = Partition(api_key_pk("*"), "API keys: created, revoked")
FUNDING_RULE = Partition(rule_pk("*"), "funding rules and their versions (coupons.data.funding_rules)")
COMMISSION = Partition(COMMISSION_PK, "the platform's commission schedule: its versions")
RUN = Partition(
    run_pk(_RUN), "a settlement run's own item (status, attempt, execution, totals)", (run_pk(_RUN_T0),)
)
JOURNAL = Partition(journal_pk("*"), "journals; a reversal's updates its redemption's journal")
# Every account's shards: ENTRIES#{account}#{shard} (models.ledger.entries_pk).
ENTRIES = Partition(
    f"{ENTRIES_PREFIX}*", "postings (coupons.data.ledger); settlement claims and settles them"
)
BALANCE = Partition(balance_pk("*", "*"), "sharded running balances")
PARTIES = Partition(
    parties_pk(_RUN, "*"), "a run's parties: netting, transfers, statements", (parties_pk(_RUN_T0, "*"),)
)
LINES = Partition(
    lines_pk(_RUN, "*"), "a run's lines: a copy of each posting it claimed", (lines_pk(_RUN_T0, "*"),)
)
HELD = Partition(
    held_pk(_RUN, "*"), "what a run's claim left waiting on a risk hold, for its statements", (held_pk(_RUN_T0, "*"),)
)
CARRY = Partition(carry_pk("*"), "amounts carried into the next run (coupons.data.settlement)")
AUDIT_LOG = Partition("AUDITLOG#*", "the audit log's shard heads and entries (coupons.data.audit)")
AUDIT_REF = Partition("AUDITREF#*", "which source record became which audit entry (exactly once)")
RISK_LIST = Partition(entry_pk("*"), "risk list entries (coupons.data.risk), checked by every redemption")
RISK_RULES = Partition(RULES_PK, "risk rule set versions")
RISK_COUNTER = Partition(counter_pk("*"), "risk velocity counters, counted inside the redemption")
RISK_GUESS = Partition(guess_pk("*"), "code-guessing miss counters of a caller")
RISK_DECISION = Partition(decision_pk("*"), "risk decisions, one copy per subject they concern")
RISK_HOLD = Partition(HOLDS_PK, "settlement holds on parties (admins', finance's, the detector's)")
RISK_REVIEW = Partition(review_pk("*"), "a REVIEW redemption's release")
RISK_BASELINE = Partition(baseline_pk("*"), "the anomaly detector's baseline per merchant and campaign")
RISK_SEEN = Partition(seen_pk("*"), "the stream records the anomaly detector has counted")
RECON_RUN = Partition(recon_run_pk("*"), "a reconciliation run (one per statement file version)")
RECON_EXCEPTION = Partition(exception_pk("*"), "reconciliation exceptions: opened, compensated, resolved")
RECON_COMPENSATION = Partition(compensation_pk("*"), "the compensation decided for an exception")
RECON_TRANSFER = Partition(transfer_state_pk("*"), "what a statement proved of a transfer (confirmed, returned)")
INSTANT_PAYOUT = Partition(
    run_pk(_PAYOUT),
    "an instant payout: its run item, party, lines (coupons.services.instant)",
    (parties_pk(_PAYOUT, "*"), lines_pk(_PAYOUT, "*")),
)
INSTANT_STATEMENT = Partition(instant_statement_pk("*", "*"), "a party's instant statement of the day")
INSTANT_PENDING = Partition(
    pending_pk("*", "*", "*"),
    "a party's pending total of a window and its postings' marks, toward the instant flush threshold",
)
MERCHANT_SETTLEMENT = Partition(merchant_settlement_pk("*"), "a merchant's own settlement mode (admin)")
ORDER = Partition(order_pk("*", "*"), "merchants' order outcomes (coupons.data.orders), once per event id")

GET, QUERY, BATCH_GET = "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"
PUT, UPDATE, DELETE = "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"
# A transaction's ConditionCheck is authorised as this action (with its key), not as a read.
CHECK = "dynamodb:ConditionCheckItem"
READ = (GET, QUERY)


@dataclass(frozen=True)
class TableAccess:
    """What one function does on the main table: `reads` anywhere in it (and in its indexes when
    `indexes`), `writes` only on items of `partitions`."""

    reads: tuple[str, ...]
    writes: tuple[str, ...] = ()
    partitions: tuple[Partition, ...] = ()
    indexes: bool = False

    def __post_init__(self) -> None:
        if bool(self.writes) != bool(self.partitions):
            raise ValueError("a writer names both what it writes and where, or neither")


WRITERS: dict[str, TableAccess] = {
    # Internet-facing: its own entities only. Of settlement it writes the run's item alone, when an
    # admin starts or resumes a run (STARTING, the next attempt); never a ledger item, a party or a line.
    "api": TableAccess(
        reads=(*READ, BATCH_GET),  # a balance sums its shards, a campaign its quota shards, in one batch
        writes=(PUT, UPDATE, DELETE, CHECK),  # DELETE: an Idempotency-Key released after a failure
        partitions=(
            CAMPAIGN,
            CAMPAIGN_TAG,
            QUOTA,
            COUPON,
            HISTORY,
            HOLDING,
            REDEMPTION,
            QR_TOKEN,
            IDEMPOTENCY,
            API_KEY,
            FUNDING_RULE,
            COMMISSION,
            RUN,
            RISK_LIST,
            RISK_RULES,
            RISK_COUNTER,
            RISK_GUESS,
            RISK_DECISION,
            RISK_HOLD,  # admins and finance hold and release parties
            RISK_REVIEW,  # ... and release REVIEW redemptions
            RECON_EXCEPTION,  # finance proposes and resolves (four-eyes); an order event opens ORDER_* exceptions
            ORDER,  # POST /v1/orders/events
            MERCHANT_SETTLEMENT,  # PUT /v1/merchants/{merchant_id}/settlement (admin)
        ),
        indexes=True,
    ),
    # The journal, its postings and balances, and its source (redemption / reversal) leaving the
    # clearing-pending index. `infra.reclear` (an operator's tool) writes through the same code.
    # On a tenant with an instant flush threshold, also each merchant's redemption posting counted
    # toward it in the same transaction (INSTANT_PENDING: coupons.data.instant_pending).
    "clearing": TableAccess(
        READ, (PUT, UPDATE, CHECK), (JOURNAL, ENTRIES, BALANCE, REDEMPTION, INSTANT_PENDING)
    ),
    "settlement.open": TableAccess(READ, (PUT, UPDATE, CHECK), (RUN,)),
    "settlement.await_clearing": TableAccess(READ, indexes=True),
    # Claims postings (and carried amounts, which the unsettled index lists alike) with their lines,
    # after making sure each party's item exists; every claim transaction checks the run item (not
    # planned yet), so RUN is among its partitions for that ConditionCheck. What it leaves waiting on a
    # risk hold it records (HELD: the lines, their totals; the party's `held` flag).
    "settlement.claim": TableAccess(
        READ, (PUT, UPDATE, CHECK), (ENTRIES, CARRY, LINES, PARTIES, RUN, HELD), indexes=True
    ),
    "settlement.plan": TableAccess(READ, (UPDATE,), (RUN,)),
    # A transfer's journal (its postings and balances) is posted in the transaction recording it SENT;
    # netting reads the party's balance (its shards in one batch) for the statement's opening balance.
    "settlement.pay": TableAccess(
        (*READ, BATCH_GET), (PUT, UPDATE, CHECK), (PARTIES, CARRY, JOURNAL, ENTRIES, BALANCE)
    ),
    "settlement.write_statements": TableAccess(READ, (UPDATE,), (PARTIES,)),
    "settlement.mark_settled": TableAccess(READ, (UPDATE,), (ENTRIES, CARRY, PARTIES)),
    "settlement.close": TableAccess(READ, (UPDATE,), (RUN,)),
    # Reads the run first: a failure of an attempt the run has moved past is not recorded on it.
    "settlement.record_failure": TableAccess((GET,), (UPDATE,), (RUN,)),
    # Reads the run of the day before, writes nothing.
    "settlement.heartbeat": TableAccess(READ),
    # Instant payouts: a one-party run of their own (its item, party, lines), the postings it claims,
    # settles or gives back (into the unsettled index again), its transfer's journal with its postings
    # and balances, the party's instant statement line; reads merchants' modes and postings in batches.
    "instant": TableAccess(
        (*READ, BATCH_GET),
        (PUT, UPDATE, CHECK, DELETE),
        (INSTANT_PAYOUT, ENTRIES, JOURNAL, BALANCE, INSTANT_STATEMENT),
    ),
    # Appends to the audit log: its heads, entries and references, nothing else (the log is the one
    # writer of its items, and no other function writes them).
    "audit": TableAccess((*READ, BATCH_GET), (PUT,), (AUDIT_LOG, AUDIT_REF)),
    # Releases expired redemption holds: the hold item (REDEMPTION#), its coupon and a history event,
    # found by a Query of the live holds' index (data/redemption_holds.py).
    "holds.expiry": TableAccess(READ, (UPDATE, PUT), (REDEMPTION, COUPON, HISTORY), indexes=True),
    # Signs the shard heads: reads them, writes nothing in the table.
    "audit.sign": TableAccess((GET,)),
    # The anomaly detector: its baselines and markers, and a flag's hold and records with them.
    "anomaly": TableAccess(READ, (PUT,), (RISK_BASELINE, RISK_SEEN, RISK_HOLD, RISK_DECISION)),
    # Reads settlement's runs and parties (never writes them); its own items, and the confirmation and
    # compensation journals with their postings and balances (coupons.data.ledger's post).
    # The daily order file (functions/orders/file): its events, the reversals they make (through the
    # redemption service: the redemption, its reversal, the coupon given back, its history, the
    # Idempotency-Key derived from the event), the ORDER_* exceptions.
    "orders": TableAccess(
        READ, (PUT, UPDATE, DELETE, CHECK),
        (ORDER, REDEMPTION, COUPON, HISTORY, IDEMPOTENCY, RECON_EXCEPTION),
        indexes=True,
    ),
    "reconciliation": TableAccess(
        (*READ, BATCH_GET),
        (PUT, UPDATE, CHECK),
        (RECON_RUN, RECON_EXCEPTION, RECON_COMPENSATION, RECON_TRANSFER, JOURNAL, ENTRIES, BALANCE),
        indexes=True,
    ),
}


def patterns(writer: str) -> list[str]:
    """The writer's partition-key patterns, as the role's condition lists them."""
    return [pattern for p in WRITERS[writer].partitions for pattern in p.patterns]


def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))


def allows(writer: str, pk: str) -> bool:
    """Whether IAM's StringLike lets `writer` write an item of partition `pk`."""
    return any(_regex(p).fullmatch(pk) for p in patterns(writer))
