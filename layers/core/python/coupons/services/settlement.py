"""Settlement (结算): the steps of a run (called by the state machine's functions); the API's view of
runs is coupons.services.settlement_runs.

The state machine (infra/constructs/settlement.py) calls, in order:
  open → await_clearing → claim (per shard, in a Map) → plan → per batch of parties (a Distributed
  Map): pay → write_statements → mark_settled → close;  on failure: record_failure.
Every step is safe to run again, within one execution (a Lambda retry) or in the next attempt of the
run (a resume after a failure or a stop): ids are derived, writes are conditional, and a transfer is
recorded as INSTRUCTED before it is sent, so a lost acknowledgement is recovered by asking the channel.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from coupons.data.ledger import SHARDS, shard_of
from coupons.data.redemptions import RedemptionStore
from coupons.data.settlement import RunExists, RunPlanned, SettlementStore
from coupons.data.statements import StatementStore
from coupons.domain import channel_fees, timeline, transfer_journals
from coupons.domain import settlement as rules
from coupons.domain.channel_fees import FeeSchedule
from coupons.domain.coupons import iso
from coupons.domain.errors import InvalidField
from coupons.domain.ledger import Journal
from coupons.domain.payments import (
    ChannelError,
    ChannelRejected,
    ChannelStatus,
    Direction,
    Instruction,
    InstructionMismatch,
    PaymentChannel,
    Receipt,
)
from coupons.domain.risk.holds import Taken
from coupons.domain.settlement import (
    ClearingBehind,
    Decision,
    RunStatus,
    SettlementRunNotFound,
    TransferStatus,
)
from coupons.domain.times import parse as parse_time


class TransfersIncomplete(Exception):
    """Some parties' transfers could not be made in this attempt (the channel failed or timed out);
    the others were. The state machine retries the step: what is SENT is skipped."""


class TransferRejected(Exception):
    """The channel refused a transfer outright: retrying will not help; the run fails, resumable once
    the cause is fixed."""


class TransferTaken(Exception):
    """Another invocation moved this transfer first (its status update won): it sends it, we do not.
    The step fails as incomplete and its retry finds the transfer SENT or asks the channel by id."""


class StatementMismatch(Exception):
    """A statement's lines do not add up to its recorded net: never publish it."""


Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class SettlementSteps:
    def __init__(
        self,
        store: SettlementStore,
        redemptions: RedemptionStore,
        statements: StatementStore,
        channel: Callable[[], PaymentChannel],
        *,
        time_zone: str,
        minimums: dict[str, int],
        clock: Clock = _now,
        channel_name: str = "simulated",
        fees: dict[str, FeeSchedule] | None = None,
        holds: Callable[[int], Callable[[list[dict]], Taken]] | None = None,
        t0_cutoff: str | None = None,
        send_lease_s: float | None = None,
    ):
        self._store = store
        # Instant payouts (services/instant.py) can give a transfer up; a lease taken before each send
        # lets the give-up see that an invocation is sending. None (the runs): no lease, nothing gives up.
        self._send_lease_s = send_lease_s
        self._redemptions = redemptions
        self._statements = statements
        self._channel = channel  # made on first use: only the pay step talks to the channel
        self._zone = time_zone
        self._minimums = minimums
        self._clock = clock
        self._channel_name = channel_name  # the accounts `settlement:{it}`, `fees:{it}`
        self._fee_schedule = (fees or {}).get(channel_name)  # None: the channel charges nothing
        # Risk holds (coupons.services.risk_holds.ClaimFilter): given the claim's time, a page's settleable
        # lines and its held ones (each with `held_because`).
        self._holds = holds or (lambda at: lambda page: Taken(page, []))
        self._t0_cutoff = t0_cutoff  # the tenant's settlement_t0_cutoff ("22:00"); None: no intraday run

    # -- open ------------------------------------------------------------------------------

    def open(
        self,
        *,
        execution: str,
        settlement_date: str | None = None,
        kind: str | None = None,
        cutoff_at: str | None = None,
        scheduled_at: str | None = None,
        business_date: str | None = None,
    ) -> dict:
        """Opens the run of a settlement date and kind (a schedule gives the time it fired: the run
        settles the local date it fired on). Its cut-off is the one the API recorded on the run (and
        checked), else derived (coupons.domain.timeline). `business_date` is the settlement date under
        its old name (a start by hand of a daily run). Proceeds only if this execution owns the run: a
        second execution for a run that exists (two schedules firing, a start racing one) stops here."""
        run_kind = rules.parse_kind(kind or timeline.RunKind.DAILY)
        day = settlement_date or business_date or rules.scheduled_date(scheduled_at, self._zone)
        cutoff = timeline.cutoff_of(run_kind, day, self._zone, self._t0_cutoff)
        run_id = cutoff.run_id
        now = iso(self._clock())
        record = {
            "run_id": run_id,
            "business_date": cutoff.settlement_date,
            "settlement_date": cutoff.settlement_date,
            "run_kind": run_kind.value,
            "cutoff_at": cutoff_at or iso(cutoff.at),
            "status": RunStatus.RUNNING.value,
            "attempt": 1,
            "execution_name": execution,
            "requested_at": now,
            "opened_at": now,
        }
        try:
            self._store.create_run(record)
            run = record
        except RunExists as exists:
            run = exists.run
            if run["status"] == RunStatus.CLOSED or run.get("execution_name") != execution:
                return {"run_id": run_id, "business_date": day, "proceed": False, "status": run["status"]}
            self._store.update_run(
                run_id,
                {"status": RunStatus.RUNNING.value, "opened_at": now},
                expect={"execution_name": execution},
            )
        return {
            "run_id": run_id,
            "business_date": cutoff.settlement_date,
            "run_kind": run_kind.value,
            # The run's own cut-off, as first recorded (a run from before cut-offs has none: the end of X).
            "cutoff_at": run.get("cutoff_at") or iso(cutoff.at),
            "attempt": run["attempt"],
            "proceed": True,
            "shards": list(range(SHARDS)),
        }

    # -- wait for clearing -----------------------------------------------------------------

    def await_clearing(self, business_date: str, *, cutoff_at: str | None = None) -> dict:
        """Everything redeemed or reversed before the cut-off must be cleared before postings are
        selected, or a late journal would miss its run (it would not be lost: the next run takes it).
        Without a cut-off: everything of business dates up to the date."""
        through = business_date
        before = None
        if cutoff_at is not None:
            before = parse_time(cutoff_at)
            through = timeline.last_business_date(
                timeline.Cutoff(timeline.RunKind.DAILY, business_date, before), self._zone
            )
        pending = self._redemptions.pending_clearing(through, before=before, limit=5)
        if pending:
            shown = ", ".join(
                f"{p['kind'].lower()} {p.get('reversal_id') or p['redemption_id']}" for p in pending
            )
            until = f"before {cutoff_at}" if cutoff_at else f"for business dates up to {business_date}"
            raise ClearingBehind(f"not cleared yet {until}: {shown}")
        return {"cleared_through": through, **({"cutoff_at": cutoff_at} if cutoff_at else {})}

    # -- claim -----------------------------------------------------------------------------

    def claim(self, run_id: str, business_date: str, shard: int, *, cutoff_at: str | None = None) -> dict:
        """Claims every unsettled posting of one shard due on or before the date; with `cutoff_at`
        (a run's cut-off, coupons.domain.timeline) only those whose event happened before it: the
        others stay in the index for a later run. A posting without an event time (cleared before it
        was recorded) and a carried amount are taken as before."""
        run = self._store.run(run_id)
        if run is not None and run.get("planned_at"):
            # A resumed run whose parties were planned (and perhaps netted and paid) claims nothing
            # more: a posting that became visible since would be settled without being paid. It
            # waits for the next run.
            return {"shard": shard, "claimed": 0, "taken_by_other_runs": 0, "skipped": "planned"}
        now = iso(self._clock())
        met: set[str] = set()
        claimed = taken = 0
        settleable = self._holds(int(self._clock().timestamp()))  # the holds in force, read once per shard
        held = 0
        try:
            for page in self._store.unsettled(shard, business_date):
                if cutoff_at is not None:
                    cut = parse_time(cutoff_at)
                    page = [p for p in page if not p.get("event_at") or parse_time(p["event_at"]) < cut]
                # Held lines stay unclaimed and due (the run after the release takes them); the run
                # records them for its statements (a party with only held lines is a party of the run).
                taken_now = settleable(page)
                page, waiting = taken_now.lines, taken_now.held
                for party in sorted({p["account"] for p in page + waiting} - met):
                    self._store.ensure_party(run_id, party, created_at=now)
                    met.add(party)
                got, lost = self._store.claim(run_id, page, claimed_at=now)
                claimed, taken = claimed + got, taken + lost
                if waiting:
                    recorded, planned = self._store.held.hold_back(run_id, waiting)
                    held += recorded
                    if planned:
                        raise RunPlanned(run_id)
        except RunPlanned:
            # The run was planned while this claim ran (the read above is only a shortcut: this
            # invocation outlived its Lambda timeout and the state machine went on). Each claim
            # checks it in its own transaction, so what is left stays unclaimed for the next run.
            return {"shard": shard, "claimed": claimed, "taken_by_other_runs": taken, "skipped": "planned"}
        answer = {"shard": shard, "claimed": claimed, "taken_by_other_runs": taken}
        return answer | ({"held": held} if held else {})

    # -- plan ------------------------------------------------------------------------------

    def plan(self, run_id: str) -> dict:
        """The parties of the run in batches, written to S3 for the Distributed Map to read (a state's
        payload is limited to 256 KB; 100,000 parties are not).

        Claims close first (`planned_at`): every claim and party record checks it in its own
        transaction, so the parties listed after it are all there will be, with all their lines."""
        self._store.close_claims(run_id, at=iso(self._clock()))
        parties = sorted(p["party"] for p in self._store.parties(run_id))
        items = rules.batches(parties)
        key = self._statements.put_manifest(run_id, items)
        self._store.update_run(run_id, {"party_count": len(parties), "batches": len(items)})
        return {"bucket": self._statements.bucket, "key": key, "parties": len(parties), "batches": len(items)}

    # -- pay -------------------------------------------------------------------------------

    def pay(self, run_id: str, business_date: str, parties: list[str]) -> dict:
        """Nets each party of the batch and makes its transfers. A party whose transfer fails does not
        stop the others; the step then fails (and is retried) naming them."""
        failed: list[str] = []
        rejected: list[str] = []
        mismatched: list[str] = []
        sent = 0
        for party in parties:
            record = self._netted(run_id, business_date, party)
            for currency, outcome in sorted(record["currencies"].items()):
                if outcome["decision"] == Decision.CARRY_FORWARD:
                    self._carry(run_id, business_date, party, currency, outcome)
                if outcome["status"] in (TransferStatus.SENT, TransferStatus.NO_TRANSFER):
                    continue
                try:
                    sent += self._transfer(run_id, business_date, party, currency, outcome)
                except TransferTaken as error:
                    failed.append(f"{party} {currency}: {error}")
                except InstructionMismatch as error:
                    mismatched.append(f"{party} {currency}: {error}")
                except ChannelRejected as error:
                    rejected.append(f"{party} {currency}: {error}")
                except ChannelError as error:
                    failed.append(f"{party} {currency}: {type(error).__name__}: {error}")
        if mismatched:
            # Permanent (never retried): the channel holds another payment under our id. Someone
            # must look at both before anything more is sent under it.
            raise InstructionMismatch("; ".join(mismatched))
        if rejected:
            raise TransferRejected("; ".join(rejected))
        if failed:
            raise TransfersIncomplete("; ".join(failed))
        return {"parties": len(parties), "sent": sent}

    def _netted(self, run_id: str, business_date: str, party: str) -> dict[str, Any]:
        record = self._store.party(run_id, party)
        if record is None:
            raise SettlementRunNotFound(f"{party} is not a party of {run_id}")
        if "currencies" in record:
            return record
        outcomes = rules.net_party(self._store.lines(run_id, party), self._minimums)
        # The balance now holds this run's lines and whatever else the party is owed: the statement's
        # opening balance is the rest. Recorded with the netting (once), so statements are stable.
        balance = self._store.balance(party)
        currencies = {}
        for o in outcomes:
            outcome = {
                "net": o.net,
                "lines": o.lines,
                "decision": o.decision.value,
                "transfer": o.transfer,
                "carried": o.carried,
                "status": (TransferStatus.PENDING if o.transfer else TransferStatus.NO_TRANSFER).value,
                "instruction_id": rules.instruction_id(run_id, party, o.currency) if o.transfer else None,
                "opening_balance": balance.get(o.currency, 0) - o.net,
            }
            if o.transfer:
                fee = channel_fees.charge(self._fee_schedule, self._channel_name, o.transfer, o.currency)
                outcome |= {
                    "fee": fee.amount,
                    "fee_borne_by": str(fee.borne_by),
                    # What the channel moves: short of a payout, on top of a collection, by a party-borne fee.
                    "transferred": transfer_journals.transferred(_direction(outcome), o.transfer, fee),
                }
            currencies[o.currency] = outcome
        return self._store.set_outcomes(run_id, party, currencies)

    def _transfer(
        self, run_id: str, business_date: str, party: str, currency: str, outcome: dict[str, Any]
    ) -> int:
        """Moves one transfer PENDING → INSTRUCTED → SENT, each step conditional on the one before: of
        two invocations on one transfer (a Lambda retried while the first still runs) only the one that
        moved it to INSTRUCTED sends; the other stands down (TransferTaken). 1 if this call sent it."""
        channel = self._channel()
        instruction = Instruction(
            instruction_id=outcome["instruction_id"],
            run_id=run_id,
            party=party,
            currency=currency,
            amount=outcome.get("transferred", outcome["transfer"]),
            direction=_direction(outcome),
            reference=f"Settlement {run_id} {party}",
            fee=int(outcome.get("fee", 0)),
        )
        receipt = None
        leased = iso(self._clock())
        lease = {} if self._send_lease_s is None else {"sending_at": leased}
        if outcome["status"] == TransferStatus.PENDING:
            # Recorded before the channel hears of it: if we die after the channel accepted, the
            # next attempt sees INSTRUCTED and asks the channel instead of assuming nothing was sent.
            if not self._store.set_transfer(
                run_id,
                party,
                currency,
                {"status": TransferStatus.INSTRUCTED.value, "instructed_at": leased, **lease},
                from_status=TransferStatus.PENDING,
            ):
                raise TransferTaken("another invocation is transferring it")
        elif lease and not self._store.set_transfer(
            run_id, party, currency, lease, from_status=TransferStatus.INSTRUCTED,
            lease_free_before=iso(self._clock() - timedelta(seconds=self._send_lease_s)),
        ):  # fmt: skip
            raise TransferTaken("another invocation is sending it")
        try:
            if outcome["status"] != TransferStatus.PENDING:
                receipt = channel.status(instruction.instruction_id)  # a lost acknowledgement comes back
                if receipt is not None:
                    _check_receipt(instruction, receipt)
            if receipt is None:
                receipt = channel.send(instruction)  # idempotent per instruction id at the channel too
            if receipt.status != ChannelStatus.ACCEPTED:
                raise ChannelRejected(f"{instruction.instruction_id} is {receipt.status}")
        except Exception:
            if lease:  # this invocation sends no more: a give-up may go ahead (a crash leaves it to expire)
                self._store.set_transfer(run_id, party, currency, {"sending_at": ""},
                                         from_status=TransferStatus.INSTRUCTED, expect=lease)  # fmt: skip
            raise
        # Lost only to another invocation that recorded the same receipt (one id, one payment): done.
        # The transfer's journal rides in the same transaction: posted exactly when SENT is recorded.
        now = iso(self._clock())
        return int(
            self._store.set_transfer(
                run_id,
                party,
                currency,
                {
                    "status": TransferStatus.SENT.value,
                    "channel_reference": receipt.channel_reference,
                    "sent_at": now,
                },
                from_status=TransferStatus.INSTRUCTED,
                journal=self._transfer_journal(party, currency, outcome),
                business_date=business_date,
                posted_at=now,
            )
        )

    def _transfer_journal(self, party: str, currency: str, outcome: dict[str, Any]) -> Journal:
        fee = channel_fees.Fee(
            self._channel_name,
            currency,
            outcome.get("fee", 0),
            channel_fees.Bearer(outcome.get("fee_borne_by", channel_fees.Bearer.PLATFORM)),
        )
        return transfer_journals.transfer_journal(
            outcome["instruction_id"],
            party=party,
            direction=_direction(outcome),
            net=outcome["transfer"],
            currency=currency,
            channel=self._channel_name,
            fee=fee,
        )

    def _carry(self, run_id: str, business_date: str, party: str, currency: str, outcome: dict) -> None:
        journal_id = rules.carry_id(run_id, party, currency)
        self._store.carry_forward(
            {
                "account": party,
                "amount": outcome["carried"],
                "currency": currency,
                "journal_id": journal_id,
                "source_id": run_id,
                "carried_from": run_id,
                "business_date": business_date,
                # Due the next day: the next run takes it, never a re-run of this one.
                "due_date": rules.next_day(business_date),
            },
            shard=shard_of(journal_id),
        )

    # -- statements ------------------------------------------------------------------------

    def write_statements(self, run_id: str, business_date: str, parties: list[str]) -> dict:
        run = {"run_id": run_id, "business_date": business_date}
        for party in parties:
            record = self._store.party(run_id, party)
            lines = self._store.lines(run_id, party)
            for currency, outcome in record["currencies"].items():
                total = sum(line["amount"] for line in lines if line["currency"] == currency)
                if total != outcome["net"]:
                    raise StatementMismatch(
                        f"{party} {currency}: lines sum to {total}, net is {outcome['net']}"
                    )
            # Only a party whose claim left something waiting has held items (no read for the others).
            held = None
            if record.get("held"):
                held = self._store.held.held(run_id, party, limit=rules.HELD_LISTED)
            document = rules.statement(run, party, lines, record, held=held)
            keys = self._statements.put_statement(run_id, party, document, rules.statement_csv(document))
            self._store.set_party(run_id, party, {"statement": keys})
        return {"parties": len(parties)}

    # -- mark settled ----------------------------------------------------------------------

    def mark_settled(self, run_id: str, parties: list[str]) -> dict:
        now = iso(self._clock())
        postings = 0
        for party in parties:
            record = self._store.party(run_id, party)
            if record.get("settled_at"):
                continue
            unpaid = [
                c for c, o in record["currencies"].items() if o["status"] not in ("SENT", "NO_TRANSFER")
            ]
            if unpaid:
                raise TransfersIncomplete(f"{party}: {', '.join(unpaid)} not transferred")
            lines = self._store.lines(run_id, party)
            self._store.mark_settled(run_id, lines, settled_at=now)
            self._store.set_party(run_id, party, {"settled_at": now})
            postings += len(lines)
        return {"parties": len(parties), "postings": postings}

    # -- close -----------------------------------------------------------------------------

    def close(self, run_id: str, execution: str) -> dict:
        totals: dict[str, dict[str, int]] = {}
        parties = 0
        for record in self._store.parties(run_id):
            parties += 1
            if not record.get("settled_at"):
                raise TransfersIncomplete(f"{record['party']} is not settled")
            for currency, o in record["currencies"].items():
                t = totals.setdefault(
                    currency,
                    {
                        "lines": 0,
                        "net": 0,
                        "payouts": 0,
                        "payout_count": 0,
                        "collections": 0,
                        "collection_count": 0,
                        "carried_forward": 0,
                    },
                )
                t["lines"] += o["lines"]
                t["net"] += o["net"]
                t["carried_forward"] += o["carried"]
                if o["decision"] == Decision.PAYOUT:
                    t["payouts"] += o["transfer"]
                    t["payout_count"] += 1
                elif o["decision"] == Decision.COLLECTION:
                    t["collections"] += o["transfer"]
                    t["collection_count"] += 1
        summary = [{"currency": c, **t} for c, t in sorted(totals.items())]
        self._store.update_run(
            run_id,
            {
                "status": RunStatus.CLOSED.value,
                "closed_at": iso(self._clock()),
                "totals": summary,
                "party_count": parties,
            },
            expect={"execution_name": execution},
        )
        run = self._store.run(run_id)
        return {
            "run_id": run_id,
            "business_date": run["business_date"],
            "party_count": parties,
            "totals": summary,
        }

    def record_failure(self, run_id: str, execution: str, error: str, cause: str) -> dict:
        run = self._store.run(run_id)
        if run is not None and run["status"] == RunStatus.CLOSED:
            # Only the SettlementRunCompleted event failed (after its retries): the money is settled
            # and the run stays CLOSED (a resume would settle nothing); the failure is kept on it.
            self._store.update_run(
                run_id, {"completion_event_error": {"error": error, "cause": cause[:2000]}}
            )
            return {"run_id": run_id, "status": RunStatus.CLOSED.value}
        self._store.update_run(
            run_id,
            {
                "status": RunStatus.FAILED.value,
                "failed_at": iso(self._clock()),
                "error": {"error": error, "cause": cause[:2000]},
            },
            expect={"execution_name": execution},
        )
        return {"run_id": run_id, "status": RunStatus.FAILED.value}


def _direction(outcome: dict[str, Any]) -> Direction:
    return Direction.PAYOUT if outcome["decision"] == Decision.PAYOUT else Direction.COLLECTION


def _check_receipt(instruction: Instruction, receipt: Receipt) -> None:
    """What the channel holds under our id must be the payment we mean: never record another one's
    receipt as ours (the channel's send refuses the same way)."""
    if (receipt.amount, receipt.currency, receipt.direction) != (
        instruction.amount,
        instruction.currency,
        instruction.direction,
    ):
        raise InstructionMismatch(
            f"{instruction.instruction_id} is held as {receipt.direction} {receipt.amount} {receipt.currency}; "
            f"ours is {instruction.direction} {instruction.amount} {instruction.currency}"
        )


def parse_minimums(text: str | None) -> dict[str, int]:
    """`{"CNY": 100}` from the environment: the smallest transfer per currency, in minor units."""
    import json

    if not text:
        return {}
    values = json.loads(text)
    if not all(isinstance(v, int) and v >= 0 for v in values.values()):
        raise InvalidField("minimums are non-negative integers in minor units")
    return values


def parse_fees(text: str | None) -> dict[str, FeeSchedule]:
    """`{"simulated": {"bps": 60, ...}}` from the environment: the fee schedule per channel."""
    import json

    return {channel: FeeSchedule(**schedule) for channel, schedule in json.loads(text or "{}").items()}


__all__ = ["SettlementSteps", "ClearingBehind"]
