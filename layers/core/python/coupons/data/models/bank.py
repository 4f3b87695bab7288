"""The simulated bank's records, in its own table (coupons.channels.simulated; schema BANK).

INSTRUCTION#{instruction_id} / INSTRUCTION   BankInstruction: an accepted instruction
FAULT#{party}                / FAULT         BankFault: an injected fault (party `*`: every party)
"""

from __future__ import annotations

from coupons.data.models.base import BankModel, Integer, Text


def instruction_pk(instruction_id: str) -> str:
    return f"INSTRUCTION#{instruction_id}"


def fault_pk(party: str) -> str:
    return f"FAULT#{party}"


INSTRUCTION_SK, FAULT_SK = "INSTRUCTION", "FAULT"


class BankInstruction(BankModel):
    """What the bank accepted under an instruction id (its idempotency: one record per id)."""

    instruction_id = Text()
    run_id = Text()
    party = Text()
    currency = Text()
    amount = Integer()
    fee = Integer(null=True)  # what the channel charged (the instruction's fee); none before fees
    direction = Text()
    reference = Text()
    channel_reference = Text()
    status = Text()
    accepted_at = Text()


class BankFault(BankModel):
    """The next `remaining` sends to `party` fail in `mode` (`slow`: after `delay_ms`)."""

    party = Text()
    mode = Text()
    remaining = Integer()
    delay_ms = Integer()
