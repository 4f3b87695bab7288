"""A reconciliation run (对账) of one channel statement file version: start → match (streamed) →
compensate (in chunks) → complete. Each step is idempotent: ids are derived (the run from the file's
key and version id, exceptions and compensations as the pure core derives them), so a retried step or
a redelivered file changes nothing. Pure logic: coupons.domain.reconciliation."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from coupons.data.channel_statements import ChannelStatementStore, parse_key
from coupons.data.ledger import AlreadyPosted, LedgerStore
from coupons.data.reconciliation import ReconciliationStore
from coupons.data.settlement import SettlementStore
from coupons.domain import transfer_journals
from coupons.domain.coupons import iso
from coupons.domain.ledger import Journal
from coupons.domain.payments import ChannelStatus, Direction, Instruction, Receipt
from coupons.domain.reconciliation import buckets
from coupons.domain.reconciliation import compensation as comp
from coupons.domain.reconciliation.formats import read_statement
from coupons.domain.reconciliation.internal import ledger_differences, unconfirmed_sums
from coupons.domain.reconciliation.matcher import Confirmation, MatchConfig, Matcher
from coupons.domain.reconciliation.records import ExceptionClass as C
from coupons.domain.reconciliation.records import (
    PartyRecord,
    ReconException,
    Transfer,
    TransferStatus,
    transfer_day,
)
from coupons.domain.transfer_journals import settlement_account, transfer_journal_id
from coupons.services import reconciliation_buckets as by_bucket
from coupons.services import reconciliation_resolutions as resolutions

FORMAT = "coupons-bill"  # a channel's format unless `formats` names another
# A file not in id order is matched in hash buckets of about this many lines (each sorted in memory).
LINES_PER_BUCKET = 50_000
# Transfers of settlement runs this many days before the file are offered to the matcher (held-open
# TIMINGs, returns and duplicates of recent ones); older ones were reconciled by earlier files.
LOOKBACK_DAYS = 7
# Automatic actions that end the exception (the rest wait: HOLD for the next file, REVIEW for finance).
ENDS = {comp.Action.CLOSE, comp.Action.ADJUST_FEE, comp.Action.RECOVER, comp.Action.RETURN_AND_REVERSE,
        comp.Action.RESEND, comp.Action.REMATCH}  # fmt: skip
SYSTEM = resolutions.SYSTEM  # who resolves what the run resolves


def run_id_of(key: str, version_id: str | None, statement_date: str) -> str:
    # S3 names the version of an object in an unversioned bucket "null" (and the PUT answers none).
    version_id = "" if version_id in (None, "null") else version_id
    digest = hashlib.sha256(f"{key}|{version_id}".encode()).hexdigest()[:20]
    return f"rcn_{statement_date.replace('-', '')}_{digest}"


def execution_name_of(key: str, version_id: str) -> str:
    """Step Functions refuses a second execution of one name (for 90 days): one run per version."""
    _, day = parse_key(key)
    return run_id_of(key, version_id, day).replace("_", "-")


def parse_policy(text: str | None) -> comp.Policy:
    return comp.Policy(**json.loads(text)) if text else comp.Policy()


def confirmation_journal(c: Confirmation, channel: str, direction: str) -> Journal:
    """The ledger's rule for a confirmed transfer (coupons.domain.transfer_journals), at what the line moved."""
    return transfer_journals.confirmation_journal(
        c.instruction_id, direction=Direction(direction), transferred_amount=c.amount, currency=c.currency,
        channel=channel,
    )


def exception_record(exc: ReconException) -> dict[str, Any]:
    record = asdict(exc)
    record["cls"] = str(exc.cls)
    return json.loads(json.dumps(record, default=str))


class Reconciliation:
    def __init__(
        self,
        store: ReconciliationStore,
        files: ChannelStatementStore,
        settlement: SettlementStore,
        ledger: LedgerStore,
        channel: Callable[[], Any],
        *,
        time_zone: str,
        policy: comp.Policy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lines_per_bucket: int = LINES_PER_BUCKET,
        formats: dict[str, str] | None = None,
    ):
        self.store, self.files, self.settlement, self.ledger = store, files, settlement, ledger
        self._channel = channel
        self.time_zone = time_zone
        self.policy = policy or comp.Policy()
        self._clock = clock
        self.lines_per_bucket = lines_per_bucket
        self.formats = formats or {}  # channel -> statement format name (formats.parser_for)

    # -- steps -------------------------------------------------------------------------------

    def start(self, *, bucket: str, key: str, version_id: str, execution: str | None = None) -> dict:
        channel, day = parse_key(key)
        run_id = run_id_of(key, version_id, day)
        run, created = self.store.start_run(
            {"run_id": run_id, "channel": channel, "statement_date": day, "bucket": bucket, "key": key,
             "version_id": version_id, "execution_name": execution, "status": "RUNNING",
             "started_at": iso(self._clock())}  # fmt: skip
        )
        return {"run_id": run_id, "proceed": created or run["status"] != "COMPLETED"}

    def match(self, run_id: str) -> dict:
        run = self.store.run(run_id)
        channel, day = run["channel"], run["statement_date"]
        # Pass 1: the whole file parses and adds up before anything is written (the summary is at its
        # end), and shows whether its lines come in our id order.
        lines, ordered = buckets.scan(self._lines(run))
        transfers = self.transfers(channel, day)
        records = self.party_records(day)
        if not ordered:  # a real channel's file, in time order: split into hash buckets, matched one by one
            n = buckets.bucket_count(lines, self.lines_per_bucket)
            by_bucket.split(self, run, n, transfers, records)
            self.store.update_run(run_id, {"lines": lines, "transfers": len(transfers), "buckets": n})
            return by_bucket.cursor(run_id, n, 0)
        matcher = Matcher(MatchConfig(channel=channel, statement_date=day, time_zone=self.time_zone))
        at = iso(self._clock())
        exception_ids: list[str] = []
        by_id = {t.instruction_id: t for t in transfers}
        for item in matcher.run(self._lines(run), transfers, party_records=records):  # pass 2: written as matched
            exception_ids.extend(self._write(item, channel, by_id, run_id, at, day))
        report = matcher.report
        self.store.update_run(run_id, {
            "lines": lines, "transfers": len(transfers), "confirmed": report.confirmed,
            "confirmed_amount": dict(report.confirmed_amount), "by_class": dict(report.by_class),
            "at_stake": report.at_stake, "exception_ids": exception_ids, "buckets": 0,
        })  # fmt: skip
        return {"run_id": run_id, "exceptions": len(exception_ids), "start": 0, "buckets": 0,
                "more_buckets": False, "settle": False}  # fmt: skip

    def match_bucket(self, run_id: str, *, bucket: int) -> dict:
        """One hash bucket of a file not in id order (services/reconciliation_buckets.py)."""
        return by_bucket.match_bucket(self, run_id, bucket)

    def settle(self, run_id: str) -> dict:
        """The buckets' leftovers decided together, and the run's counts."""
        return by_bucket.settle(self, run_id)

    def compensate(self, run_id: str, *, start: int = 0, limit: int = 50) -> dict:
        """Compensates the run's exceptions [start, start + limit): a chunk per step invocation."""
        run = self.store.run(run_id)
        ids = run.get("exception_ids") or []
        today = run["statement_date"]
        for exception_id in ids[start : start + limit]:
            self._compensate(self.store.exception(exception_id), run_id, today)
        following = start + limit
        return {"run_id": run_id, "start": following, "more": following < len(ids)}

    def post_resolutions(self) -> int:
        """Finance's resolutions done once each: their journals posted, their RESENDs sent
        (services/reconciliation_resolutions.py)."""
        return resolutions.post_resolutions(self)

    def complete(self, run_id: str) -> dict:
        self.post_resolutions()  # finance's since the last run: the ledger check below sees them
        self.check_ledger(run_id)  # the books after this file: before the report, which counts it
        run = self.store.run(run_id)
        compensated: dict[str, int] = {}
        for exception_id in run.get("exception_ids") or []:
            action = (self.store.exception(exception_id) or {}).get("action")
            if action:
                compensated[action] = compensated.get(action, 0) + 1
        summary = {k: run.get(k) for k in ("run_id", "channel", "statement_date", "key", "version_id", "lines",
                                           "transfers", "confirmed", "confirmed_amount", "by_class", "at_stake")}  # fmt: skip
        summary["compensated"] = compensated
        report_key = self.files.put_report(run_id, {**summary, "exception_ids": run.get("exception_ids") or []})
        at = iso(self._clock())
        self.store.update_run(run_id, {"status": "COMPLETED", "completed_at": at, "compensated": compensated,
                                       "report_key": report_key})  # fmt: skip
        opened = [
            {"exception_id": e["exception_id"], "class": e["cls"], "currency": e["currency"],
             "amount_at_stake": e["amount_at_stake"]}
            for e in (self.store.exception(i) for i in run.get("exception_ids") or [])
            if e and e["status"] == "OPEN" and e["opened_by_run"] == run_id
        ]  # fmt: skip
        # What the alarms watch (infra/constructs/monitoring.py): exceptions open longer than a day, and
        # any money in suspense:{channel} (挂账, waiting for finance).
        watch = {"open_over_a_day": self.open_since(self._clock() - timedelta(days=1)),
                 "suspense": sum(abs(v) for v in self.ledger.balance(f"suspense:{run['channel']}").values())}  # fmt: skip
        return {"completed": {**summary, "report_key": report_key}, "opened": opened[:100], "watch": watch}

    def open_since(self, moment: datetime) -> int:
        """How many exceptions are OPEN since before `moment`."""
        before, n, cursor = iso(moment), 0, None
        while True:
            page, cursor = self.store.exceptions(limit=200, cursor=cursor, status="OPEN")
            n += sum(1 for e in page if e["opened_at"] < before)
            if not cursor:
                return n

    # -- our side ----------------------------------------------------------------------------

    def transfers(self, channel: str, statement_date: str, *, proven_before: str | None = None) -> list[Transfer]:
        """Our transfers the file may show, sorted by instruction id: those of the settlement runs of
        the last LOOKBACK_DAYS, as settlement recorded them, with what files dated before
        `proven_before` (default: the file's own day) proved."""
        found = {t.instruction_id: t for t, _ in self._sent(statement_date)}
        before = proven_before or statement_date
        states = self.store.transfer_states(list(found), before=before) if found else {}
        out = []
        for instruction_id in sorted(found):
            t = found[instruction_id]
            if instruction_id in states:
                t = Transfer(**{**asdict(t), "status": TransferStatus(states[instruction_id])})
            out.append(t)
        return out

    def party_records(self, statement_date: str) -> list[PartyRecord]:
        """Point 5 (b, c): per transfer, what its run decided for the party, what the postings the run
        claimed for it add up to (read at the postings themselves), and what the transfer's own
        journal settled. Sorted by instruction id, like the transfers."""
        records = []
        for transfer, (party, o) in self._sent(statement_date):
            journal = self.ledger.journal(transfer_journal_id(transfer.instruction_id))
            settled = None
            if journal is not None:
                settled = -sum(leg["amount"] for leg in journal["legs"] if leg["account"] == party)
            records.append(PartyRecord(
                instruction_id=transfer.instruction_id, party=party, currency=transfer.currency,
                decision=o["decision"], transfer=int(o["transfer"]), net=int(o["net"]),
                postings_sum=self.store.claimed_sum(self.settlement.lines(transfer.run_id, party),
                                                    run_id=transfer.run_id, currency=transfer.currency),
                journal_settled=settled, journal_expected=o["status"] == "SENT",
                moved=int(o["transferred"]) if "transferred" in o else None,
            ))  # fmt: skip
        return sorted(records, key=lambda r: r.instruction_id)

    def _sent(self, statement_date: str) -> Iterator[tuple[Transfer, tuple[str, dict]]]:
        """The INSTRUCTED / SENT transfers of the settlement runs of the last LOOKBACK_DAYS, each with
        (party, its outcome as the run recorded it)."""
        since = (date.fromisoformat(statement_date) - timedelta(days=LOOKBACK_DAYS)).isoformat()
        start = None
        while True:
            runs, start = self.settlement.runs(limit=50, start=start)
            for run in runs:
                if run["business_date"] < since:
                    continue
                for party in self.settlement.parties(run["run_id"]):
                    for currency, o in (party.get("currencies") or {}).items():
                        if not o.get("instruction_id") or o.get("status") not in ("INSTRUCTED", "SENT"):
                            continue
                        day = transfer_day(o.get("sent_at") or o.get("instructed_at"), self.time_zone)
                        yield Transfer(
                            instruction_id=o["instruction_id"], party=party["party"],
                            direction=Direction.PAYOUT if o["decision"] == "PAYOUT" else Direction.COLLECTION,
                            # What the channel moved and charged: a party-borne fee comes off a payout.
                            amount=int(o.get("transferred", o["transfer"])), fee=int(o.get("fee", 0)),
                            currency=currency,
                            status=TransferStatus(o["status"]), date=day,
                            sent_at=o.get("sent_at") or "", run_id=run["run_id"],
                        ), (party["party"], o)  # fmt: skip
            if not start or (runs and runs[-1]["business_date"] < since):
                break

    def check_ledger(self, run_id: str) -> list[str]:
        """`settlement:{channel}` after this file's confirmations and compensations against the transfers
        the channel has still not confirmed (SENT: their journal put them there; INSTRUCTED ones posted
        nothing yet), with what this file proved. A difference is an INTERNAL_MISMATCH booked to
        suspense (review). Idempotent: once compensated the books agree and a retry finds nothing."""
        run = self.store.run(run_id)
        channel, day = run["channel"], run["statement_date"]
        following = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
        on_the_way = [t for t in self.transfers(channel, day, proven_before=following)
                      if t.status is TransferStatus.SENT]  # fmt: skip
        found = []
        at = iso(self._clock())
        for exc in ledger_differences(channel, day, self.ledger.balance(settlement_account(channel)),
                                      unconfirmed_sums(on_the_way)):  # fmt: skip
            if self.store.record_exception(exception_record(exc), run_id=run_id, at=at):
                # Counted with the match's classes (once: a retry finds the exception there).
                by_class, at_stake = dict(run.get("by_class") or {}), dict(run.get("at_stake") or {})
                by_class[str(exc.cls)] = by_class.get(str(exc.cls), 0) + 1
                stake = dict(at_stake.get(str(exc.cls)) or {})
                stake[exc.currency] = stake.get(exc.currency, 0) + exc.amount_at_stake
                at_stake[str(exc.cls)] = stake
                self.store.update_run(run_id, {"by_class": by_class, "at_stake": at_stake})
                run = {**run, "by_class": by_class, "at_stake": at_stake}
            self.store.add_run_exception(run_id, exc.exception_id)
            self._compensate(self.store.exception(exc.exception_id), run_id, day)
            found.append(exc.exception_id)
        return found

    # -- internals ---------------------------------------------------------------------------

    def _lines(self, run: dict) -> Iterator:
        return read_statement(self.files.open(run["key"], run["version_id"] or None),
                              self.formats.get(run["channel"], FORMAT),
                              channel=run["channel"], statement_date=run["statement_date"])  # fmt: skip

    def _write(self, item, channel: str, by_id: dict, run_id: str, at: str, day: str) -> list[str]:
        """A matched item written as matched: a confirmation applied, an exception recorded (its id)."""
        if isinstance(item, Confirmation):
            self._confirm(item, channel, by_id[item.instruction_id], run_id, at, day)
            return []
        self.store.record_exception(exception_record(item), run_id=run_id, at=at)
        return [item.exception_id]

    def _confirm(self, c: Confirmation, channel: str, transfer: Transfer, run_id: str, at: str, c_day: str) -> None:
        self._post(confirmation_journal(c, channel, transfer.direction), c.value_date, at, run_id)
        self.store.set_transfer_state(c.instruction_id, TransferStatus.CONFIRMED, run_id=run_id,
                                      statement_date=c_day, at=at)
        if c.closes:
            self.store.set_compensated(c.closes, action=comp.Action.CLOSE, compensation_id="",
                                       review=False, resolution={"action": "CLOSE", "by": SYSTEM, "at": at,
                                       "note": f"booked on {c.value_date} ({run_id})"})  # fmt: skip

    def _compensate(self, record: dict, run_id: str, today: str) -> None:
        exc = ReconException(**{k: record.get(k) for k in (
            "exception_id", "date", "channel", "key", "currency", "amount_at_stake", "ours", "theirs",
            "detail", "suggested_action")}, cls=record["cls"], facts=record.get("facts") or {})  # fmt: skip
        decision = comp.decide(exc, self.policy, today=today)
        at = iso(self._clock())
        if decision.action == comp.Action.QUERY_CHANNEL:
            receipt = self._channel().status(exc.key)
            decision = comp.after_query(exc, receipt)
            if decision.action == comp.Action.REMATCH:
                # The channel's own record holds the same payment: it moved. Confirmed on that record
                # (a later file that shows it finds it CONFIRMED; one that never does leaves nothing open).
                ours = exc.ours or {}
                confirmation = Confirmation(exc.key, receipt.channel_reference, ours["currency"], ours["amount"], 0, today)
                self._confirm(confirmation, exc.channel, Transfer(**{**ours, "status": ours["status"]}), run_id, at, today)
        self.store.record_compensation({
            "compensation_id": decision.compensation_id, "exception_id": exc.exception_id,
            "action": str(decision.action), "review": int(decision.review),
            "journal_id": decision.journal.journal_id if decision.journal else None,
            "transfer": decision.transfer, "due_date": decision.due_date, "note": decision.note,
            "created_at": at,
        })  # fmt: skip
        if decision.journal is not None:
            self._post(decision.journal, today, at, run_id, due_date=decision.due_date)
        if exc.cls is C.AMOUNT_MISMATCH and decision.journal is not None and exc.instruction_id:
            # Its journal took it out of settlement:{channel} (what moved is in bank:, the difference in
            # suspense:): no longer on its way, so neither offered as unconfirmed nor counted there again.
            self.store.set_transfer_state(exc.instruction_id, TransferStatus.CONFIRMED, run_id=run_id,
                                          statement_date=today, at=at)
        if decision.action == comp.Action.RETURN_AND_REVERSE and exc.instruction_id:
            self.store.set_transfer_state(exc.instruction_id, TransferStatus.RETURNED, run_id=run_id,
                                          statement_date=today, at=at)
        if decision.action in (comp.Action.RESEND, comp.Action.RECOVER) and decision.transfer:
            receipt = self.send(decision.transfer)
            if receipt.status is not ChannelStatus.ACCEPTED:
                raise RuntimeError(f"{decision.transfer['instruction_id']} is {receipt.status}")
        ends = decision.action in ENDS and not decision.review
        self.store.set_compensated(
            exc.exception_id, action=str(decision.action), compensation_id=decision.compensation_id,
            review=decision.review,
            resolution={"action": str(decision.action), "by": SYSTEM, "at": at, "note": decision.note} if ends else None,
        )  # fmt: skip

    def send(self, transfer: dict) -> Receipt:
        """A transfer (compensation.resend_transfer, or a recovery) sent through the channel under its
        own id: the one path of every re-send, automatic or finance's."""
        return self._channel().send(Instruction(
            instruction_id=transfer["instruction_id"], run_id=transfer.get("run_id", ""),
            party=transfer["party"], currency=transfer["currency"], amount=int(transfer["amount"]),
            direction=Direction(transfer["direction"]), reference=transfer["instruction_id"],
            fee=int(transfer.get("fee") or 0),
        ))  # fmt: skip

    def _post(self, journal: Journal, day: str, at: str, run_id: str, *, due_date: str | None = None) -> None:
        # A replayed step: the journal's id is derived, it is there already.
        with contextlib.suppress(AlreadyPosted):
            self.ledger.post(journal, business_date=day, due_date=due_date or day, posted_at=at, extra={})
