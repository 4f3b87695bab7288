"""Instant settlement (即时到账): pays INSTANT merchants' postings as they clear, in micro-batches per
party (docs/instant.md). Called by functions/instant with the postings of one stream batch (the event
source's batching window makes the micro-batch: at most `window_seconds` after clearing).

An instant payout is a settlement run of one party, claimed and paid by the run's own code
(coupons.data.settlement, coupons.services.settlement.SettlementSteps): its run item (run_kind
INSTANT), its party record, a line per claimed posting (claimed under `attribute_not_exists(run_id)`,
so a posting belongs to at most one payout or run, and claims close at `planned_at`), its transfer
PENDING → INSTRUCTED → SENT with its settlement journal in the SENT transaction, its postings marked
settled. Then its line on the party's instant statement of the day, the run CLOSED, an event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from coupons.data.instant import InstantStore
from coupons.data.instant_pending import InstantPending
from coupons.data.settlement import RunExists, RunPlanned, SettlementStore
from coupons.domain import instant as rules
from coupons.domain.coupons import iso
from coupons.domain.instant import InstantTerms, SettlementMode
from coupons.domain.payments import ChannelError, InstructionMismatch, PaymentChannel
from coupons.domain.settlement import RunStatus, TransferStatus
from coupons.services.settlement import SettlementSteps, TransferRejected, TransfersIncomplete, TransferTaken

EVENT_SOURCE = "coupons.settlement"
SENT_EVENT, LEFT_EVENT = "InstantPayoutSent", "InstantPayoutLeftToRun"
# How long a send lease (services/settlement.py) holds: Lambda's longest timeout, so its holder is dead
# past it. A give-up waits that long after a crash between taking it and sending (a rare case).
SEND_LEASE_S = 900.0
LEFT_TO_RUN = "LEFT_TO_RUN"  # a payout's (and its transfer's) status once given back to the runs
RUN_KIND = "INSTANT"
INSTANT_SETTLEMENT = "INSTANT_SETTLEMENT"  # the env var: the tenant file's instant_settlement, JSON


class PayoutFailed(Exception):
    """A party's instant payout failed this time: its records are reported failed and redelivered."""


@dataclass
class Outcome:
    paid: list[str] = field(default_factory=list)  # payout ids closed by this call
    left: list[str] = field(default_factory=list)  # payout ids given back to the scheduled runs
    failed: list[str] = field(default_factory=list)  # parties whose payout is retried


def _now() -> datetime:
    return datetime.now(UTC)


class InstantPayouts:
    def __init__(
        self,
        instant: InstantStore,
        settlement: SettlementStore,
        steps: SettlementSteps,
        channel: Callable[[], PaymentChannel],
        terms: InstantTerms,
        *,
        time_zone: str,
        clock: Callable[[], datetime] = _now,
        emit: Callable[[str, dict[str, Any]], None] = lambda kind, detail: None,
        metric: Callable[[str, int], None] = lambda name, value: None,
        pending: InstantPending | None = None,
    ):
        self._instant = instant
        self._pending = pending
        self._store = settlement
        self._steps = steps  # built with the instant minimums: the runs' minimum transfer does not apply
        self._channel = channel
        self._terms = terms
        self._zone = ZoneInfo(time_zone)
        self._clock = clock
        self._emit = emit
        self._metric = metric

    # -- modes ----------------------------------------------------------------------------------

    def instant_postings(self, postings: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """Per party, the postings paid instantly (coupons.domain.instant.is_instant): the merchants'
        and the campaigns' modes of the whole batch read in one BatchGetItem."""
        parties = rules.by_party(postings)
        merchants = [rules.merchant_of(p) for p in parties]
        campaigns = [c for found in parties.values() for p in found if (c := p.get("campaign_id"))]
        merchant_modes, campaign_modes = self._instant.settings(merchants, campaigns)
        return rules.instant_by_party(
            [p for found in parties.values() for p in found],
            merchant_modes,
            campaign_modes,
            self._terms.default_mode,
        )

    # -- a batch --------------------------------------------------------------------------------

    def process(self, postings: list[dict[str, Any]], *, delivered_at: datetime) -> Outcome:
        """Pays each INSTANT party's postings of the batch (one payout per party, per currency a
        transfer). A party whose payout fails does not stop the others: it is named in `failed`."""
        outcome = Outcome()
        parties = self.instant_postings(postings)
        window = rules.window_start(delivered_at, self._terms.window_seconds)
        for party in sorted(parties):
            try:
                self._settle_party(party, parties[party], window, outcome)
            except PayoutFailed:
                outcome.failed.append(party)
        return outcome

    def flush(self, crossing: dict[str, Any]) -> Outcome:
        """A party's pending total of a window reached the tenant's threshold (the crossing's record,
        coupons.data.instant_pending): its postings of that window are paid now, as the payout
        `flush_payout_id(party, currency, window)`, without waiting for the window's. One Query (the
        marks), one BatchGetItem per 100 postings (them, whole), one for the modes. What the window's
        payout (or a run) claimed first is theirs; what clears after the flush claimed waits for the
        window's payout. A redelivered crossing finds its payout (finishing it if a crash stopped it)."""
        outcome = Outcome()
        party, currency = crossing["party"], crossing["currency"]
        window = datetime.fromisoformat(crossing["window"].replace("Z", "+00:00"))
        postings = [
            p for p in self._pending.postings(self._pending.marked(party, currency, window))
            if p.get("account") == party and p.get("currency") == currency
        ]  # fmt: skip
        theirs = self.instant_postings(postings).get(party, [])
        if not theirs:
            return outcome  # a SCHEDULED merchant's total (clearing counts every merchant's): nothing
        state = {(p["pk"], p["sk"]): p for p in postings}
        try:
            self._settle_party(
                party, theirs, window, outcome,
                payouts=[rules.flush_payout_id(party, currency, window)], state=state,
            )  # fmt: skip
        except PayoutFailed:
            outcome.failed.append(party)
        return outcome

    def _settle_party(
        self,
        party: str,
        candidates: list[dict],
        window: datetime,
        outcome: Outcome,
        *,
        payouts: list[str] | None = None,
        state: dict[tuple[str, str], dict[str, Any]] | None = None,
    ) -> None:
        """`payouts`: the ids to claim into, in order (None: the window's, `payout_id(party, window, n)`,
        failing past the last; a flush's one id, leaving the rest to the window's payout once it is
        planned). `state`: the candidates' claim state if read already (else one BatchGetItem)."""
        if state is None:
            state = self._instant.postings([(c["pk"], c["sk"]) for c in candidates])
        unclaimed, resume = [], set()
        for c in candidates:
            now = state.get((c["pk"], c["sk"]))
            if now is None or now.get("settled") or now.get("left_by_payout"):
                continue  # settled, or given back to the runs by a payout that failed: not ours again
            if not now.get("run_id"):
                unclaimed.append(c)
            elif rules.is_payout(now["run_id"]):
                resume.add(now["run_id"])  # a redelivery: finish what an earlier attempt claimed
            # else a scheduled run claimed it first: the run pays it
        for payout in sorted(resume):
            self._finish(payout, party, outcome)
        taken, _left = rules.payable(unclaimed, self._terms.minimums)  # below the minimum: the runs'
        if not taken:
            return
        ids = payouts or [
            rules.payout_id(party, window, n) for n in range(1, rules.MAX_PAYOUTS_PER_WINDOW + 1)
        ]
        for payout in ids:
            run = self._open(payout, party, window)
            if run.get("planned_at") or run["status"] != RunStatus.RUNNING:
                continue  # that payout of the window is on its way: this batch's postings make the next
            try:
                at = iso(self._clock())
                self._store.ensure_party(payout, party, created_at=at)
                self._store.claim(payout, taken, claimed_at=at)
            except RunPlanned:
                continue
            self._finish(payout, party, outcome)
            return
        if payouts is None:
            raise PayoutFailed(f"{party}: more than {rules.MAX_PAYOUTS_PER_WINDOW} payouts in one window")
        # A flush whose payout is on its way: what it did not claim waits for the window's payout.

    def _open(self, payout: str, party: str, window: datetime) -> dict[str, Any]:
        now = iso(self._clock())
        record = {
            "run_id": payout,
            "business_date": self._day(),
            "settlement_date": self._day(),
            "run_kind": RUN_KIND,
            "cutoff_at": iso(window),  # the window's start: the payout's place in time
            "status": RunStatus.RUNNING.value,
            "attempt": 0,  # failed attempts so far
            "execution_name": party,  # the party it pays (a run's execution: who owns it)
            "requested_at": now,
            "opened_at": now,
        }
        try:
            return self._store.create_run(record)
        except RunExists as exists:
            return exists.run

    def _day(self) -> str:
        return rules.statement_day(self._clock(), self._zone)

    # -- paying ---------------------------------------------------------------------------------

    def _finish(self, payout: str, party: str, outcome: Outcome) -> None:
        run = self._store.run(payout)
        if run is None or run["status"] in (RunStatus.CLOSED, LEFT_TO_RUN):
            return
        day = run["business_date"]
        self._store.close_claims(payout, at=iso(self._clock()))  # nothing more joins it from here
        if self._store.party(payout, party) is None:
            # Opened, never claimed into (a party record comes before any claim): nothing to pay.
            self._close(payout, [])
            return
        try:
            self._steps.pay(payout, day, [party])
        except (TransfersIncomplete, TransferRejected, ChannelError) as error:
            if isinstance(error, InstructionMismatch):
                raise PayoutFailed(f"{payout}: {error}") from error  # a person must look: never given back
            if isinstance(error, TransferTaken):
                raise PayoutFailed(str(error)) from error  # the other invocation finishes it
            attempts = self._instant.count_attempt(payout)
            if attempts < self._terms.max_attempts and not isinstance(error, TransferRejected):
                raise PayoutFailed(f"{payout} attempt {attempts}: {error}") from error
            self._leave(payout, party, f"{type(error).__name__}: {error}", outcome)
            return
        self._steps.mark_settled(payout, [party])
        record = self._store.party(payout, party)
        lines = []
        for currency, o in sorted(record["currencies"].items()):
            if o["status"] != TransferStatus.SENT:
                continue
            line = {
                "party": party,
                "day": day,
                "payout_id": payout,
                "currency": currency,
                "amount": o["transfer"],
                "transferred": o.get("transferred", o["transfer"]),
                "fee": o.get("fee", 0),
                "postings": o["lines"],
                "instruction_id": o["instruction_id"],
                "channel_reference": o["channel_reference"],
                "window": run["cutoff_at"],
                "sent_at": o["sent_at"],
            }
            self._instant.append_statement(line)
            lines.append(line)
        self._close(payout, lines)
        for line in lines:
            self._emit(SENT_EVENT, line)
        self._metric("InstantPayoutSent", len(lines))
        outcome.paid.append(payout)

    def _close(self, payout: str, lines: list[dict[str, Any]]) -> None:
        totals = [
            {
                "currency": line["currency"],
                "payouts": line["amount"],
                "payout_count": 1,
                "lines": line["postings"],
            }
            for line in lines
        ]
        self._store.update_run(
            payout,
            {
                "status": RunStatus.CLOSED.value,
                "closed_at": iso(self._clock()),
                "totals": totals,
                "party_count": 1,
            },
            expect={"status": RunStatus.RUNNING.value},
        )

    def _leave(self, payout: str, party: str, error: str, outcome: Outcome) -> None:
        """After its retries: the payout's postings go back to the scheduled runs, visibly (the run
        LEFT_TO_RUN with the error, each posting's `left_by_payout`, a metric and an event). Only a
        transfer the channel does not hold is given up: each is moved to LEFT_TO_RUN from where it
        stands (PENDING, or INSTRUCTED once the channel says it has nothing under our id), so no
        invocation can send it after this."""
        record = self._store.party(payout, party) or {}
        for currency, o in sorted((record.get("currencies") or {}).items()):
            status = o["status"]
            if status in (TransferStatus.SENT, TransferStatus.NO_TRANSFER, LEFT_TO_RUN):
                continue
            if status == TransferStatus.INSTRUCTED:
                if (o.get("sending_at") or "") >= iso(self._clock() - timedelta(seconds=SEND_LEASE_S)):
                    # Another invocation is between asking the channel and sending: giving up now
                    # could release postings the channel is about to pay. The next attempt looks again.
                    raise PayoutFailed(f"{payout}: another invocation is sending it")
                try:
                    held = self._channel().status(o["instruction_id"])
                except ChannelError as unknown:
                    raise PayoutFailed(
                        f"{payout}: cannot tell whether the channel holds it: {unknown}"
                    ) from None
                if held is not None:
                    raise PayoutFailed(f"{payout}: the channel holds it; the next attempt records it")
            if not self._store.set_transfer(
                payout, party, currency, {"status": LEFT_TO_RUN}, from_status=status,
                # No send started since it was read (a send takes the lease first): one of the two commits.
                expect={"sending_at": o.get("sending_at")} if status == TransferStatus.INSTRUCTED else None,
            ):  # fmt: skip
                raise PayoutFailed(f"{payout}: its transfer moved on while it was being given up")
        self._store.update_run(
            payout,
            {
                "status": LEFT_TO_RUN,
                "failed_at": iso(self._clock()),
                "error": {"error": "LeftToRun", "cause": error[:2000]},
            },
            expect={"status": RunStatus.RUNNING.value},
        )
        lines = self._store.lines(payout, party)
        self._instant.release(payout, lines, at=iso(self._clock()))
        detail = {
            "payout_id": payout,
            "party": party,
            "postings": len(lines),
            "amounts": rules.pending(lines),
            "error": error[:500],
        }
        self._emit(LEFT_EVENT, detail)
        self._metric("InstantPayoutLeftToRun", 1)
        outcome.left.append(payout)


def parse_terms(text: str | None) -> InstantTerms:
    """The tenant file's `instant_settlement` from the environment (compact JSON); absent: SCHEDULED."""
    values = json.loads(text or "{}")
    return InstantTerms(
        default_mode=SettlementMode(values.get("default_mode", SettlementMode.SCHEDULED)),
        window_seconds=int(values.get("window_seconds", 60)),
        minimums=values.get("minimum_transfer", {}),
        max_attempts=int(values.get("max_attempts", 3)),
        thresholds=values.get("flush_threshold", {}),
    )


__all__ = ["InstantPayouts", "Outcome", "PayoutFailed", "parse_terms"]
