"""The simulated bank's differences: every way a real channel's statement disagrees with what we
instructed, injected into a list of statement lines by a pure function, deterministic given its
spec (or a seed). Tests and `make local` use it; each injection says which exception it must
become, so a property can check that the matcher classifies each exactly once."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from coupons.domain.reconciliation.lines import LineStatus, LineType, StatementLine
from coupons.domain.reconciliation.records import ExceptionClass


class Difference(StrEnum):
    MISSING = "missing"  # the transfer is not on the statement (短款)
    DUPLICATE = "duplicate"  # its line twice
    AMOUNT = "amount"  # another amount
    FEE = "fee"  # another fee
    FAILED = "failed"  # status FAILED
    RETURNED = "returned"  # a RETURN line follows it (退票)
    PREVIOUS_DAY = "previous_day"  # booked the day before (cut-off, 日切)
    UNKNOWN = "unknown"  # a line we never instructed (长款)
    CURRENCY = "currency"  # another currency


EXPECTED = {
    Difference.MISSING: ExceptionClass.MISSING_AT_CHANNEL,
    Difference.DUPLICATE: ExceptionClass.DUPLICATE_AT_CHANNEL,
    Difference.AMOUNT: ExceptionClass.AMOUNT_MISMATCH,
    Difference.FEE: ExceptionClass.FEE_MISMATCH,
    Difference.FAILED: ExceptionClass.STATUS_MISMATCH,
    Difference.RETURNED: ExceptionClass.STATUS_MISMATCH,
    Difference.PREVIOUS_DAY: ExceptionClass.TIMING,
    Difference.UNKNOWN: ExceptionClass.UNKNOWN_AT_CHANNEL,
    Difference.CURRENCY: ExceptionClass.CURRENCY_MISMATCH,
}


@dataclass(frozen=True)
class Injection:
    kind: Difference
    instruction_id: str | None = None  # the line it changes (None: UNKNOWN adds a line)
    delta: int = 1  # AMOUNT / FEE: minor units added; UNKNOWN: the new line's amount


@dataclass(frozen=True)
class Injected:
    injection: Injection
    expected: ExceptionClass
    key: str  # the exception key the matcher must give it


def inject(
    lines: list[StatementLine], injections: list[Injection]
) -> tuple[list[StatementLine], list[Injected]]:
    """`lines` with each injection applied (at most one per instruction id), in the same order,
    line numbers left as they were (a writer and its parser number them again)."""
    by_id = {line.instruction_id: i for i, line in enumerate(lines) if line.instruction_id}
    targets = [inj.instruction_id for inj in injections if inj.kind is not Difference.UNKNOWN]
    if len(set(targets)) != len(targets):
        raise ValueError("one difference per instruction id")
    slots: list[list[StatementLine]] = [[line] for line in lines]
    done: list[Injected] = []
    extra: list[StatementLine] = []
    for n, inj in enumerate(injections, start=1):
        kind = Difference(inj.kind)
        if kind is Difference.UNKNOWN:
            template = lines[0] if lines else None
            if template is None:
                raise ValueError("an unknown line needs a statement to imitate")
            seed = hashlib.sha256(f"{template.statement_date}|unknown|{n}".encode()).hexdigest()[:16].upper()
            line = template.with_(
                channel_reference=f"SIMBANK-UNKNOWN-{seed}",
                instruction_id=f"ins_never_{seed.lower()}",
                type=LineType.PAYOUT,
                status=LineStatus.SUCCESS,
                amount=max(inj.delta, 1),
            )
            extra.append(line)
            done.append(Injected(inj, EXPECTED[kind], line.channel_reference))
            continue
        if inj.instruction_id not in by_id:
            raise ValueError(f"no line for {inj.instruction_id}")
        i = by_id[inj.instruction_id]
        line = lines[i]
        key = line.instruction_id
        if kind is Difference.MISSING:
            slots[i] = []
        elif kind is Difference.DUPLICATE:
            slots[i] = [line, line]
            key = f"{key}#2"
        elif kind is Difference.AMOUNT:
            slots[i] = [line.with_(amount=line.amount + inj.delta)]
        elif kind is Difference.FEE:
            slots[i] = [line.with_(fee=line.fee + inj.delta)]
        elif kind is Difference.FAILED:
            slots[i] = [line.with_(status=LineStatus.FAILED)]
        elif kind is Difference.RETURNED:
            back = line.with_(channel_reference=line.channel_reference + "-R", type=LineType.RETURN, fee=0)
            slots[i] = [line, back]
            key = f"{key}/RETURN"
        elif kind is Difference.PREVIOUS_DAY:
            slots[i] = [_day_before(line)]
        elif kind is Difference.CURRENCY:
            slots[i] = [line.with_(currency="USD" if line.currency != "USD" else "EUR")]
        done.append(Injected(inj, EXPECTED[kind], key))
    return [line for slot in slots for line in slot] + extra, done


def plan(lines: list[StatementLine], *, seed: int, counts: dict[Difference, int]) -> list[Injection]:
    """`counts` differences of each kind on distinct lines chosen by `seed` (the same seed, the same
    plan). AMOUNT and FEE deltas are 1..500 minor units."""
    rng = random.Random(seed)
    ids = sorted({line.instruction_id for line in lines if line.instruction_id})
    needed = sum(n for kind, n in counts.items() if kind is not Difference.UNKNOWN)
    if needed > len(ids):
        raise ValueError(f"{needed} differences asked on {len(ids)} lines")
    chosen = iter(rng.sample(ids, needed))
    out = []
    for kind in Difference:
        for _ in range(counts.get(kind, 0)):
            target = None if kind is Difference.UNKNOWN else next(chosen)
            delta = rng.randint(1, 500) if kind is not Difference.UNKNOWN else rng.randint(100, 10**6)
            out.append(Injection(kind, target, delta))
    return out


def parse_spec(text: str) -> dict[Difference, int]:
    """`missing=1,returned=1,fee=1,previous_day=1` (the `make local` option) -> counts per kind."""
    counts: dict[Difference, int] = {}
    aliases = {"cutoff": Difference.PREVIOUS_DAY.value}  # 日切: the name operators use
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, number = part.partition("=")
        try:
            counts[Difference(aliases.get(name.strip(), name.strip()))] = int(number or "1")
        except ValueError:
            known = ", ".join(d.value for d in Difference)
            raise ValueError(f"{part!r}: expected kind=count with a kind among {known}") from None
    return counts


def _day_before(line: StatementLine) -> StatementLine:
    moment = datetime.fromisoformat(line.channel_time) - timedelta(days=1)
    return line.with_(
        channel_time=moment.isoformat(),
        value_date=(date.fromisoformat(line.value_date) - timedelta(days=1)).isoformat(),
    )
