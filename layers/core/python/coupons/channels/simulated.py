"""A simulated bank: a PaymentChannel over its own DynamoDB table (schema BANK), with injectable
faults so settlement can be tested against every way a real channel fails.

  INSTRUCTION#{instruction_id} / INSTRUCTION   the bank's record of an accepted instruction
  FAULT#{party}                / FAULT         an injected fault: mode, remaining, delay_ms
                                               (party `*` matches every party)
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from coupons.data.items import from_item, to_item
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

MODES = ("fail", "reject", "timeout", "slow", "crash")
ANY_PARTY = "*"


def channel_reference(instruction_id: str) -> str:
    # Derived, not random: a rebuilt table or a replayed test gives the same statement references.
    return "SIMBANK-" + hashlib.sha256(instruction_id.encode()).hexdigest()[:20].upper()


def _instruction_key(instruction_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"INSTRUCTION#{instruction_id}"}, "sk": {"S": "INSTRUCTION"}}


def _fault_key(party: str) -> dict[str, Any]:
    return {"pk": {"S": f"FAULT#{party}"}, "sk": {"S": "FAULT"}}


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
        self._client = client
        self._table = table_name
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

    # -- reconciliation, tests and ops ---------------------------------------------------------

    def accepted(self) -> list[Receipt]:
        """Every instruction the bank accepted, oldest first: what its statement would list."""
        records = [from_item(item) for item in self._scan("INSTRUCTION")]
        return [_receipt(r) for r in sorted(records, key=lambda r: (r["accepted_at"], r["instruction_id"]))]

    def records(self) -> list[dict[str, Any]]:
        """The bank's statement lines: each accepted instruction with whom it paid or collected from,
        oldest first (what reconciliation will read)."""
        records = [from_item(item) for item in self._scan("INSTRUCTION")]
        for record in records:
            record.pop("pk", None)
            record.pop("sk", None)
        return sorted(records, key=lambda r: (r["accepted_at"], r["instruction_id"]))

    def inject(self, party: str, mode: str, *, times: int = 1, delay_ms: int = 0) -> None:
        """The next `times` sends to `party` (`*`: any party) fail in `mode`. Replaces any fault
        already injected for that party; a party's own fault is used before the wildcard's."""
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r} (known: {', '.join(MODES)})")
        if times < 1 or delay_ms < 0:
            raise ValueError("a fault needs times >= 1 and delay_ms >= 0")
        self._client.put_item(
            TableName=self._table,
            Item={
                **_fault_key(party),
                **to_item({"party": party, "mode": mode, "remaining": times, "delay_ms": delay_ms}),
            },
        )

    def clear_faults(self) -> None:
        for item in self._scan("FAULT"):
            self._client.delete_item(TableName=self._table, Key={"pk": item["pk"], "sk": item["sk"]})

    # -- internals -----------------------------------------------------------------------------

    def _take_fault(self, party: str) -> dict[str, Any] | None:
        for who in (party, ANY_PARTY):
            try:
                # Consumed under `remaining > 0`: concurrent sends each take a distinct unit, so a
                # fault injected `times=n` fires exactly n times. A missing fault fails the same check.
                answer = self._client.update_item(
                    TableName=self._table,
                    Key=_fault_key(who),
                    UpdateExpression="SET remaining = remaining - :one",
                    ConditionExpression="remaining > :zero",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":zero": {"N": "0"}},
                    ReturnValues="ALL_NEW",
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                continue
            return from_item(answer["Attributes"])
        return None

    def _record(self, instruction: Instruction) -> Receipt:
        record = {
            "pk": f"INSTRUCTION#{instruction.instruction_id}",
            "sk": "INSTRUCTION",
            "instruction_id": instruction.instruction_id,
            "run_id": instruction.run_id,
            "party": instruction.party,
            "currency": instruction.currency,
            "amount": instruction.amount,
            "direction": str(instruction.direction),
            "reference": instruction.reference,
            "channel_reference": channel_reference(instruction.instruction_id),
            "status": str(ChannelStatus.ACCEPTED),
            "accepted_at": iso(self._clock()),
        }
        try:
            # The bank's idempotency: one record per instruction id, whoever writes first wins.
            self._client.put_item(
                TableName=self._table, Item=to_item(record), ConditionExpression="attribute_not_exists(pk)"
            )
            return _receipt(record)
        except self._client.exceptions.ConditionalCheckFailedException:
            pass
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
        # Strongly consistent: a timeout's recovery must see a write made a moment ago.
        item = self._client.get_item(
            TableName=self._table, Key=_instruction_key(instruction_id), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else None

    def _scan(self, sk: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk = :sk",
            "ExpressionAttributeValues": {":sk": {"S": sk}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.scan(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


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
