"""Reconciliation runs, their exceptions and compensations, and what reconciliation knows of a
transfer (coupons.data.reconciliation).

  RECONRUN#{run_id}            / RUN           ReconRun        gsi1: RECONRUNS / {date}#{run_id}
  RECONEXCEPTION#{exception_id} / EXCEPTION    ReconExceptionItem gsi1: RECONEXCEPTIONS / {date}#{id}
  RECONCOMPENSATION#{cmp_id}   / COMPENSATION  CompensationItem
  RECONTRANSFER#{instruction_id} / STATE       TransferState   (CONFIRMED / RETURNED by reconciliation)

Settlement's own party records are never written here: what a statement proved about a transfer is
reconciliation's item beside them (settlement's SENT stays what settlement knew).
"""

from __future__ import annotations

from coupons.data.models.base import Integer, List, MainModel, Map, Text

RUN_SK, EXCEPTION_SK, COMPENSATION_SK, TRANSFER_SK = "RUN", "EXCEPTION", "COMPENSATION", "STATE"
RUNS_INDEX_PK = "RECONRUNS"
# gsi2 (sparse): resolved exceptions whose resolution's journal the reconciliation function has still to
# post (the API writes no ledger item); posting it takes the exception out, in the same transaction.
RESOLUTIONS_PENDING_PK = "RECONRESOLUTIONS"
EXCEPTIONS_INDEX_PK = "RECONEXCEPTIONS"


def recon_run_pk(run_id: str) -> str:
    return f"RECONRUN#{run_id}"


def exception_pk(exception_id: str) -> str:
    return f"RECONEXCEPTION#{exception_id}"


def compensation_pk(compensation_id: str) -> str:
    return f"RECONCOMPENSATION#{compensation_id}"


def transfer_state_pk(instruction_id: str) -> str:
    return f"RECONTRANSFER#{instruction_id}"


class ReconRun(MainModel):
    """One file version's run: what it read, what it found, by class, and the report's key."""

    kind = Text()
    run_id = Text()
    channel = Text()
    statement_date = Text()
    bucket = Text()
    key = Text()
    version_id = Text()
    execution_name = Text(null=True)
    status = Text()  # RUNNING / COMPLETED / FAILED
    started_at = Text()
    completed_at = Text(null=True)
    lines = Integer(null=True)
    transfers = Integer(null=True)
    buckets = Integer(null=True)  # a file not in id order: the hash buckets it was split into (0: in order)
    confirmed = Integer(null=True)
    confirmed_amount = Map(null=True)  # currency -> minor units
    by_class = Map(null=True)  # class -> count
    at_stake = Map(null=True)  # class -> currency -> minor units
    compensated = Map(null=True)  # action -> count
    exception_ids = List(of=Text, null=True)  # bounded by the differences, not the file
    report_key = Text(null=True)
    error = Map(null=True)


class ReconExceptionItem(MainModel):
    """One difference (domain.reconciliation.records.ReconException), OPEN until resolved, never deleted."""

    kind = Text()
    exception_id = Text()
    date = Text()
    channel = Text()
    cls = Text()
    key = Text()
    currency = Text()
    amount_at_stake = Integer()
    ours = Map(null=True)
    theirs = Map(null=True)
    detail = Text()
    suggested_action = Text()
    facts = Map(null=True)
    status = Text()  # OPEN / RESOLVED
    opened_at = Text()
    opened_by_run = Text()
    last_seen_run = Text()
    last_seen_at = Text()
    action = Text(null=True)  # the automatic compensation's action
    compensation_id = Text(null=True)
    review = Integer(null=True)  # 1: waits for finance
    proposal = Map(null=True)  # four-eyes: {action, note, by, at}
    resolution = Map(null=True)  # {action, note, by, at, approved_by}
    resolved_at = Text(null=True)
    history = List(null=True)  # every proposal, resolution and reopening, in order: who, what, why


class CompensationItem(MainModel):
    kind = Text()
    compensation_id = Text()
    exception_id = Text()
    action = Text()
    review = Integer()
    journal_id = Text(null=True)
    transfer = Map(null=True)
    due_date = Text(null=True)
    note = Text(null=True)
    created_at = Text()


class ClaimedItem(MainModel):
    """Read only: what reconciliation needs of an item a settlement run claimed (a ledger posting, a
    carried amount), found by the key its settlement line names. Never saved (it would drop the rest)."""

    amount = Integer()
    currency = Text()
    run_id = Text(null=True)


class TransferState(MainModel):
    kind = Text()
    instruction_id = Text()
    status = Text()  # CONFIRMED / RETURNED
    run_id = Text()
    statement_date = Text()  # the file that proved it (a replay or re-upload of that day ignores it)
    at = Text()
