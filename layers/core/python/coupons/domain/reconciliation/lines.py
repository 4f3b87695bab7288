"""One line of a channel's statement, whatever the file's format: what every parser yields and what
the matcher reads. Amounts are integer minor units; the line's day is the channel's booking day."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from coupons.domain.money import is_currency


class LineType(StrEnum):
    PAYOUT = "PAYOUT"  # the channel paid a party for us
    COLLECTION = "COLLECTION"  # the channel collected from a party for us
    RETURN = "RETURN"  # money of an earlier payout or collection came back (退票 / refund)


class LineStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"  # the channel took the instruction and did not move the money
    RETURNED = "RETURNED"  # moved, then came back (the line itself says so)


class StatementFormatError(ValueError):
    """The file is not what its format says (a column, a summary that does not add up, a truncated
    file). Nothing of such a file may be used: the run fails naming the line, nothing is matched."""

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None):
        where = "".join(
            [
                f" (line {line}" if line is not None else "",
                f", column {column}" if column else "",
                ")" if line is not None else "",
            ]
        )
        super().__init__(message + where)
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class StatementLine:
    channel: str
    statement_date: str  # the file's day, YYYY-MM-DD
    value_date: str  # the channel's booking day of this line (its time in the channel's zone)
    channel_time: str  # ISO 8601, as the channel gave it (with its offset)
    channel_reference: str
    instruction_id: str | None  # our id (the merchant order number); None when the channel has none
    type: LineType
    status: LineStatus
    amount: int  # minor units, >= 0: the type says which way it went
    fee: int  # minor units the channel charged (negative: a fee given back)
    currency: str
    line_no: int = 0  # position in the file: evidence, and a stable order for equal keys
    extra: dict = field(default_factory=dict, compare=False, hash=False)  # format-specific columns

    def __post_init__(self) -> None:
        if type(self.amount) is not int or type(self.fee) is not int or self.amount < 0:
            raise ValueError(f"line amounts are integers of minor units, amount >= 0: {self!r}")
        if not is_currency(self.currency):
            raise ValueError(f"unknown currency {self.currency!r}")
        object.__setattr__(self, "type", LineType(self.type))
        object.__setattr__(self, "status", LineStatus(self.status))

    def with_(self, **changes) -> StatementLine:
        return replace(self, **changes)

    def evidence(self) -> dict:
        """What an exception shows of the channel's side."""
        return {
            "line_no": self.line_no,
            "statement_date": self.statement_date,
            "value_date": self.value_date,
            "channel_time": self.channel_time,
            "channel_reference": self.channel_reference,
            "instruction_id": self.instruction_id,
            "type": str(self.type),
            "status": str(self.status),
            "amount": self.amount,
            "fee": self.fee,
            "currency": self.currency,
        }


class Totals:
    """Count and sums per currency and type, kept while lines stream by: what a file's summary must
    equal (its size does not grow with the file's)."""

    def __init__(self) -> None:
        self.count = 0
        self.by_currency: dict[str, dict[str, int]] = {}

    def add(self, line: StatementLine) -> None:
        self.count += 1
        sums = self.by_currency.setdefault(
            line.currency, {"count": 0, "PAYOUT": 0, "COLLECTION": 0, "RETURN": 0, "fee": 0}
        )
        sums["count"] += 1
        sums[str(line.type)] += line.amount
        sums["fee"] += line.fee
