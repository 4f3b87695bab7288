"""A simulated bank: a PaymentChannel over its own DynamoDB table (schema BANK), with injectable
faults so settlement can be tested against every way a real channel fails.

  INSTRUCTION#{instruction_id} / INSTRUCTION   the bank's record of an accepted instruction
  FAULT#{party}                / FAULT         an injected fault: mode, remaining, delay_ms
                                               (party `*` matches every party)

(the models: coupons.data.models.bank)
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from coupons.data.models.bank import (
    FAULT_SK,
    INSTRUCTION_SK,
    BankFault,
    BankInstruction,
    fault_pk,
    instruction_pk,
)
from coupons.data.models.base import failed_condition
from coupons.domain.coupons import iso
from coupons.domain.payments import (
    ChannelRejected,
    ChannelStatus,
    ChannelTimeout,
    ChannelUnavailable,
    Direction,
    Instruction,
    InstructionMismatch,
    Receipt,
)
from coupons.domain.reconciliation.lines import StatementLine
from coupons.domain.reconciliation.simbank import statement_lines

MODES = ("fail", "reject", "timeout", "slow", "crash")
ANY_PARTY = "*"


def channel_reference(instruction_id: str) -> str:
    # Derived, not random: a rebuilt table or a replayed test gives the same statement references.
    return "SIMBANK-" + hashlib.sha256(instruction_id.encode()).hexdigest()[:20].upper()


def _exit_like_a_killed_lambda() -> None:
    os._exit(70)  # no finally blocks, no flush: exactly what a Lambda timeout or OOM leaves behind


class SimulatedBank:
    def __init__(
        self,
        client,
        table_name: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        crash: Callable[[], None] = _exit_like_a_killed_lambda,
    ):
        self._instruction = BankInstruction.bound(client, table_name)
        self._fault = BankFault.bound(client, table_name)
        self._clock = clock
        self._sleep = sleep
        self._crash = crash

    # -- PaymentChannel ------------------------------------------------------------------------

    def send(self, instruction: Instruction) -> Receipt:
        fault = self._take_fault(instruction.party)
        mode = fault["mode"] if fault else None
        if mode == "fail":
            raise ChannelUnavailable(f"simulated bank unavailable for {instruction.party}")
        if mode == "reject":
            raise ChannelRejected(f"simulated bank rejected {instruction.instruction_id}")
        if mode == "slow":
            self._sleep(fault.get("delay_ms", 0) / 1000)
        receipt = self._record(instruction)
        if mode == "timeout":
            # The bank did the work; only its answer is lost. status() will tell.
            raise ChannelTimeout(f"no answer from the simulated bank for {instruction.instruction_id}")
        if mode == "crash":
            # Our side dies between the bank's acceptance and our own write. A test's hook may
            # return; then we answer as if nothing happened.
            self._crash()
        return receipt

    def status(self, instruction_id: str) -> Receipt | None:
        stored = self._get(instruction_id)
        return _receipt(stored) if stored else None

    def statement(self, statement_date: str, *, time_zone: str, channel: str = "simulated") -> list[StatementLine]:
        """The bank's statement of one day (its zone): one SUCCESS line per instruction it accepted
        that day, in instruction id order (what `channel_bill.write` writes; differences are injected
        by the caller, coupons.services.channel_statements)."""
        return statement_lines(
            self.records(),
            channel=channel,
            statement_date=statement_date,
            time_zone=time_zone,
            fee_of=lambda record: int(record.get("fee") or 0),
        )

    # -- reconciliation, tests and ops ---------------------------------------------------------

    def accepted(self) -> list[Receipt]:
        """Every instruction the bank accepted, oldest first: what its statement would list."""
        records = [record.record() for record in self._scan(self._instruction, INSTRUCTION_SK)]
        return [_receipt(r) for r in sorted(records, key=lambda r: (r["accepted_at"], r["instruction_id"]))]

    def records(self) -> list[dict[str, Any]]:
        """The bank's statement lines: each accepted instruction with whom it paid or collected from,
        oldest first (what reconciliation will read)."""
        records = [record.record() for record in self._scan(self._instruction, INSTRUCTION_SK)]
        return sorted(records, key=lambda r: (r["accepted_at"], r["instruction_id"]))

    def inject(self, party: str, mode: str, *, times: int = 1, delay_ms: int = 0) -> None:
        """The next `times` sends to `party` (`*`: any party) fail in `mode`. Replaces any fault
        already injected for that party; a party's own fault is used before the wildcard's."""
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r} (known: {', '.join(MODES)})")
        if times < 1 or delay_ms < 0:
            raise ValueError("a fault needs times >= 1 and delay_ms >= 0")
        self._fault(
            fault_pk(party), FAULT_SK, party=party, mode=mode, remaining=times, delay_ms=delay_ms
        ).save()

    def clear_faults(self) -> None:
        for fault in self._scan(self._fault, FAULT_SK):
            fault.delete()

    # -- internals -----------------------------------------------------------------------------

    def _take_fault(self, party: str) -> dict[str, Any] | None:
        model = self._fault
        for who in (party, ANY_PARTY):
            fault = model(fault_pk(who), FAULT_SK)
            try:
                # The fault comes back whole (ReturnValues ALL_NEW).
                fault.update(
                    actions=[model.remaining.set(model.remaining - 1)],
                    # Consumed under `remaining > 0`: concurrent sends each take a distinct unit, so a
                    # fault injected `times=n` fires exactly n times. A missing fault fails the same check.
                    condition=model.remaining > 0,
                )
            except UpdateError as error:
                if failed_condition(error):
                    continue
                raise
            return fault.record()
        return None

    def _record(self, instruction: Instruction) -> Receipt:
        record = {
            "instruction_id": instruction.instruction_id,
            "run_id": instruction.run_id,
            "party": instruction.party,
            "currency": instruction.currency,
            "amount": instruction.amount,
            "fee": instruction.fee,
            "direction": str(instruction.direction),
            "reference": instruction.reference,
            "channel_reference": channel_reference(instruction.instruction_id),
            "status": str(ChannelStatus.ACCEPTED),
            "accepted_at": iso(self._clock()),
        }
        model = self._instruction
        try:
            model.from_record(record, pk=instruction_pk(instruction.instruction_id), sk=INSTRUCTION_SK).save(
                # The bank's idempotency: one record per instruction id, whoever writes first wins.
                condition=model.pk.does_not_exist()
            )
            return _receipt(record)
        except PutError as error:
            if not failed_condition(error):
                raise
        # Records are never deleted, so the one that beat us is there (read consistently).
        stored = self._get(instruction.instruction_id)
        if not instruction.same_payment(
            stored["party"], stored["currency"], stored["amount"], stored["direction"]
        ):
            raise InstructionMismatch(
                f"{instruction.instruction_id} was accepted as {stored['direction']} {stored['amount']} "
                f"{stored['currency']} to {stored['party']}; now asked for {instruction.direction} "
                f"{instruction.amount} {instruction.currency} to {instruction.party}"
            )
        return _receipt(stored)

    def _get(self, instruction_id: str) -> dict[str, Any] | None:
        model = self._instruction
        try:
            # Strongly consistent: a timeout's recovery must see a write made a moment ago.
            return model.get(instruction_pk(instruction_id), INSTRUCTION_SK, consistent_read=True).record()
        except model.DoesNotExist:
            return None

    @staticmethod
    def _scan(model: Any, sk: str) -> Iterator[Any]:
        """Every record of one kind (the bank's table is small: a test's or a local stack's)."""
        return model.scan(model.sk == sk, consistent_read=True)


def _receipt(record: dict[str, Any]) -> Receipt:
    return Receipt(
        instruction_id=record["instruction_id"],
        channel_reference=record["channel_reference"],
        status=ChannelStatus(record["status"]),
        amount=record["amount"],
        currency=record["currency"],
        direction=Direction(record["direction"]),
        accepted_at=record["accepted_at"],
    )
