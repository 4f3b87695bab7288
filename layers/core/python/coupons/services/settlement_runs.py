"""Settlement runs as the API offers them: start (or resume) the run of a date, follow it, read a
statement. The steps the state machine runs are coupons.services.settlement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coupons.data.idempotency import Completion
from coupons.data.settlement import RunExists, SettlementStore
from coupons.data.statements import StatementStore
from coupons.data.workflows import ExecutionExists, SettlementWorkflow
from coupons.domain import settlement as rules
from coupons.domain import timeline
from coupons.domain.coupons import iso
from coupons.domain.principals import Principal, Role
from coupons.domain.settlement import RunStatus, SettlementRunNotFound, StatementNotFound
from coupons.services.accounts import check_account
from coupons.services.settlement import Clock, _now


class SettlementRuns:
    """What the API offers: start (or resume) the run for a date, follow it, read a statement."""

    def __init__(
        self,
        store: SettlementStore,
        statements: StatementStore,
        workflow: Callable[[], SettlementWorkflow],
        *,
        tenant: str,
        time_zone: str,
        t0_cutoff: str | None = None,
        clock: Clock = _now,
    ):
        self._store = store
        self._statements = statements
        self._workflow = workflow
        self._tenant = tenant
        self._zone = time_zone
        self._t0_cutoff = t0_cutoff  # the tenant's settlement_t0_cutoff; None: no intraday run
        self._clock = clock

    def start(
        self,
        settlement_date: str,
        principal: Principal,
        *,
        kind: str = "daily",
        cutoff_must_have_passed: bool = True,
        completion: Completion | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """(the run, whether an execution was started now). A settlement date has one run of each kind
        (daily, intraday): asking again returns it; asking again after its execution failed or was
        stopped resumes it (the next attempt). A run whose cut-off has not passed is refused (400
        `settlement_cutoff_in_future`, naming `settlement_date`): nothing is written.

        `cutoff_must_have_passed=False` is for the local stack only (`make settle`), where a developer
        settles today's T+1 redemptions "tomorrow" without waiting for it.

        Under an Idempotency-Key (`completion`), the attempt this request records carries the key's
        ref: the run id and execution name derive from the date, kind and attempt, so a re-run after a
        lost completion finds its attempt, makes sure its execution started, and answers as the first did."""
        principal.require(Role.ADMIN)
        day = rules.validate_settlement_date(settlement_date)
        run_kind = rules.parse_kind(kind)
        cutoff = timeline.cutoff_of(run_kind, day, self._zone, self._t0_cutoff)
        if cutoff_must_have_passed:
            timeline.check_passed(cutoff, now=self._clock())
        run_id = cutoff.run_id
        run = self._store.run(run_id)
        if run is None:
            record = {
                "run_id": run_id,
                "business_date": day,
                "settlement_date": day,
                "run_kind": run_kind.value,
                "cutoff_at": iso(cutoff.at),
                "status": RunStatus.STARTING.value,
                "attempt": 1,
                "execution_name": rules.execution_name(self._tenant, day, 1, run_kind),
                "requested_at": iso(self._clock()),
                "idempotency_ref": completion.ref if completion else None,
            }
            record = {k: v for k, v in record.items() if v is not None}
            try:
                self._store.create_run(record)
            except RunExists as exists:
                run = exists.run  # another request (or the schedule) got there first
            else:
                return record, self._start_execution(record)
        return self._existing(run, completion)

    def _existing(
        self, run: dict[str, Any], completion: Completion | None = None
    ) -> tuple[dict[str, Any], bool]:
        if completion is not None and run.get("idempotency_ref") == completion.ref:
            # This request's first run recorded this attempt and lost its answer: StartExecution is
            # idempotent by the attempt's name, so start (or find) it and answer as the first did.
            self._start_execution(run)
            completion.found_first()
            return run, True
        if run["status"] == RunStatus.CLOSED:
            return run, False
        state = self._workflow().status(run["execution_name"])
        if state is None:
            # Recorded, but the request that recorded it died before starting it: start it now.
            return run, self._start_execution(run)
        if state in ("RUNNING", "SUCCEEDED"):
            return run, False
        attempt = run["attempt"] + 1
        changes = {
            "status": RunStatus.STARTING.value,
            "attempt": attempt,
            "execution_name": rules.execution_name(
                self._tenant, run["business_date"], attempt, rules.kind_of(run["run_id"])
            ),
            "resumed_at": iso(self._clock()),
            # Whose attempt this is now; "" is nobody's (an earlier request's retry must not claim it).
            "idempotency_ref": completion.ref if completion else "",
        }
        if not self._store.update_run(run["run_id"], changes, expect={"attempt": run["attempt"]}):
            return self._store.run(run["run_id"]), False  # a concurrent request resumed it
        run = {**run, **changes}
        return run, self._start_execution(run)

    def _start_execution(self, run: dict[str, Any]) -> bool:
        try:
            # The execution opens the run by its date and kind, with the cut-off recorded (and checked) here.
            self._workflow().start(
                run["execution_name"],
                {
                    "settlement_date": run["business_date"],
                    "kind": str(rules.kind_of(run["run_id"])),
                    **({"cutoff_at": run["cutoff_at"]} if run.get("cutoff_at") else {}),
                },
            )
        except ExecutionExists:
            return False
        return True

    def get(self, run_id: str, *, bucket: int, start: dict | None, limit: int) -> tuple[dict, tuple | None]:
        rules.business_date_of(run_id)
        run = self._store.run(run_id)
        if run is None:
            raise SettlementRunNotFound(field="run_id")
        parties: list[dict[str, Any]] = []
        while bucket < rules.PARTY_BUCKETS and len(parties) < limit:
            found, start = self._store.party_page(run_id, bucket, start=start, limit=limit - len(parties))
            parties += found
            if not start:
                bucket, start = bucket + 1, None
        summaries = [_party_summary(p) for p in parties]
        position = (bucket, start) if bucket < rules.PARTY_BUCKETS else None
        view = _run_view(run)
        if run["status"] in (RunStatus.STARTING, RunStatus.RUNNING):
            # A stopped execution records nothing on the run (no Catch runs): ask Step Functions, so
            # that a caller sees the run is not moving, and that starting it again resumes it.
            state = self._workflow().status(run["execution_name"]) or "NOT_STARTED"
            if state == "SUCCEEDED":  # it closed the run between our two reads: show it closed
                view = _run_view(self._store.run(run_id))
            else:
                view["execution_status"] = state
        return {**view, "parties": summaries}, position

    def statement(self, run_id: str, party: str, principal: Principal, fmt: str) -> str:
        rules.business_date_of(run_id)
        party = check_account(party, principal)
        text = self._statements.statement(run_id, party, fmt)
        if text is None:
            raise StatementNotFound(field="party")
        return text


def _run_view(run: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "run_id",
        "business_date",
        "settlement_date",
        "run_kind",
        "cutoff_at",
        "status",
        "attempt",
        "requested_at",
        "opened_at",
        "closed_at",
        "failed_at",
        "error",
        "party_count",
        "batches",
        "totals",
        "completion_event_error",
    )
    return {k: run[k] for k in keep if k in run}


def _party_summary(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "party": record["party"],
        "settled": bool(record.get("settled_at")),
        "currencies": [
            {
                "currency": c,
                **{
                    k: o.get(k)
                    for k in (
                        "lines",
                        "net",
                        "decision",
                        "transfer",
                        "carried",
                        "status",
                        "instruction_id",
                        "channel_reference",
                    )
                },
            }
            for c, o in sorted((record.get("currencies") or {}).items())
        ],
    }


__all__ = ["SettlementRuns"]
