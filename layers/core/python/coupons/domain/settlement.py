"""Settlement (结算): netting each party's due postings into one transfer per party and currency.

A run settles one settlement date D with a cut-off (coupons.domain.timeline): every unsettled posting
due on or before D (business date + the campaign's T+N) whose event came before the cut-off is claimed
by exactly one run, summed per party (account) and currency, and becomes
  - a PAYOUT when the net is positive (we owe the party),
  - a COLLECTION when it is negative (the party owes: a brand that funds discounts),
  - NONE when it is zero (a statement, no transfer),
  - CARRY_FORWARD when 0 < |net| < the currency's minimum transfer: no transfer now; the amount is
    owed into the next run as one carried line, due the day after D, shown on both statements.
So for every run and currency: Σ payouts − Σ collections + Σ carried out = Σ claimed lines.

Everything here is pure: ids are derived (a retry computes the same id), nothing reads the clock.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from coupons.domain.dates import calendar_day
from coupons.domain.errors import DomainError, InvalidField, Kind, NotFound
from coupons.domain.payments import Direction
from coupons.domain.risk import holds
from coupons.domain.timeline import RunKind
from coupons.domain.times import parse as parse_time

# Party records (one per party per run) are spread over this many partitions so that a run with
# 100,000 parties does not write them all to one partition.
PARTY_BUCKETS = 16
# Parties per child of the Distributed Map: one Lambda invocation per step handles this many.
BATCH_SIZE = 100
# `stl_YYYYMMDD` (the daily run of a settlement date) or `stl_YYYYMMDD_t0` (its intraday T+0 run).
RUN_ID = re.compile(r"^stl_\d{8}(_t0)?$")


class RunStatus(StrEnum):
    STARTING = "STARTING"  # recorded by the API; its execution has not opened it yet
    RUNNING = "RUNNING"
    CLOSED = "CLOSED"
    FAILED = "FAILED"  # the execution failed or was stopped: starting it again resumes it


class Decision(StrEnum):
    PAYOUT = "PAYOUT"
    COLLECTION = "COLLECTION"
    NONE = "NONE"
    CARRY_FORWARD = "CARRY_FORWARD"


class TransferStatus(StrEnum):
    """Where one party's transfer in one currency stands; only ever moves forward."""

    PENDING = "PENDING"  # netted, nothing sent
    INSTRUCTED = "INSTRUCTED"  # about to be sent: the channel may or may not have it (ask it)
    SENT = "SENT"  # the channel accepted it; its reference is recorded
    NO_TRANSFER = "NO_TRANSFER"  # net zero or carried forward


class SettlementRunNotFound(NotFound):
    code = "settlement_run_not_found"
    title = "No such settlement run"


class StatementNotFound(NotFound):
    code = "statement_not_found"
    title = "This party has no statement in this run"


class SettlementRunInProgress(DomainError):
    kind = Kind.CONFLICT
    code = "settlement_run_in_progress"
    title = "The settlement run for this date is still running"


class ClearingBehind(Exception):
    """Records of business dates up to the cut-off are not cleared yet: the run waits (Step Functions
    retries this error with backoff, then fails the run with it)."""


def run_id(settlement_date: str, kind: RunKind | str = RunKind.DAILY) -> str:
    """One run per settlement date and kind per tenant (the stack is the tenant's): `stl_YYYYMMDD` (daily)
    and `stl_YYYYMMDD_t0` (intraday, T+0), as coupons.domain.timeline.Cutoff.run_id says."""
    digits = settlement_date.replace("-", "")
    return f"stl_{digits}" if RunKind(kind) is RunKind.DAILY else f"stl_{digits}_t0"


def business_date_of(run: str) -> str:
    """The settlement date X of a run id (daily or intraday); 404 for anything else."""
    if not RUN_ID.match(run):
        raise SettlementRunNotFound(f"{run} is not a settlement run id")
    digits = run[4:12]
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"


def kind_of(run: str) -> RunKind:
    business_date_of(run)
    return RunKind.INTRADAY if run.endswith("_t0") else RunKind.DAILY


def execution_name(tenant: str, settlement_date: str, attempt: int, kind: RunKind | str = RunKind.DAILY) -> str:
    """Step Functions keeps execution names unique per state machine: two starts for one run and
    attempt cannot both run. A resume after a failure is the next attempt of the same run."""
    middle = settlement_date if RunKind(kind) is RunKind.DAILY else f"{settlement_date}-t0"
    return f"settle-{tenant}-{middle}-{attempt}"


def validate_settlement_date(text: str) -> str:
    """A calendar date, YYYY-MM-DD (whether its run may start yet is the cut-off's to say:
    coupons.domain.timeline.check_passed)."""
    try:
        return date.fromisoformat(calendar_day(text)).isoformat()
    except ValueError:
        raise InvalidField("settlement_date must be a date, YYYY-MM-DD", field="settlement_date") from None


def parse_kind(text: str) -> RunKind:
    """`daily` or `intraday` (any case), as the API takes it."""
    try:
        return RunKind(text.upper())
    except ValueError:
        raise InvalidField("kind must be daily or intraday", field="kind") from None


def scheduled_date(scheduled_at: str, time_zone: str) -> str:
    """The local date a schedule fired on: the run it starts settles that date (the daily one at 02:00
    on X settles X, cut at X's start; the heartbeat checks X's daily run)."""
    return parse_time(scheduled_at).astimezone(ZoneInfo(time_zone)).date().isoformat()


def next_day(business_date: str) -> str:
    return (date.fromisoformat(business_date) + timedelta(days=1)).isoformat()


def party_bucket(party: str) -> int:
    return int.from_bytes(hashlib.sha256(party.encode()).digest()[:4], "big") % PARTY_BUCKETS


def instruction_id(run: str, party: str, currency: str) -> str:
    """The payout/collection id, derived from run + party + currency: every retry and every re-run
    sends the same id, so the channel can answer it idempotently and we can ask it by id."""
    digest = hashlib.sha256(f"{run}|{party}|{currency}".encode()).hexdigest()[:20]
    return f"ins_{run[4:]}_{digest}"


def carry_id(run: str, party: str, currency: str) -> str:
    digest = hashlib.sha256(f"{run}|{party}|{currency}".encode()).hexdigest()[:20]
    return f"cf_{run[4:]}_{digest}"


@dataclass(frozen=True)
class Outcome:
    currency: str
    net: int  # Σ lines: + the party is owed, − it owes
    lines: int
    decision: Decision
    transfer: int  # what moves now (≥ 0), in the direction of the decision
    carried: int  # what moves to the next run (signed like net)

    @property
    def direction(self) -> Direction | None:
        return {Decision.PAYOUT: Direction.PAYOUT, Decision.COLLECTION: Direction.COLLECTION}.get(
            self.decision
        )


def decide(currency: str, net: int, lines: int, minimum: int) -> Outcome:
    """`minimum`: the smallest transfer worth making in this currency, either way (a bank charges for
    a 0.01 payout as for a large one). Below it, the net waits for the next run."""
    if net == 0:
        return Outcome(currency, 0, lines, Decision.NONE, 0, 0)
    if abs(net) < minimum:
        return Outcome(currency, net, lines, Decision.CARRY_FORWARD, 0, net)
    if net > 0:
        return Outcome(currency, net, lines, Decision.PAYOUT, net, 0)
    return Outcome(currency, net, lines, Decision.COLLECTION, -net, 0)


def net_party(lines: Iterable[dict[str, Any]], minimums: dict[str, int]) -> list[Outcome]:
    """One outcome per currency the party has lines in (sorted by currency)."""
    sums: dict[str, list[int]] = {}
    for line in lines:
        total = sums.setdefault(line["currency"], [0, 0])
        total[0] += int(line["amount"])
        total[1] += 1
    return [
        decide(currency, net, count, minimums.get(currency, 0))
        for currency, (net, count) in sorted(sums.items())
    ]


def batches(parties: Sequence[str], size: int = BATCH_SIZE) -> list[dict[str, Any]]:
    return [
        {"batch": i // size, "parties": list(parties[i : i + size])} for i in range(0, len(parties), size)
    ]


# -- statements --------------------------------------------------------------------------------

STATEMENT_COLUMNS = (
    "currency",
    "journal_id",
    "source_kind",
    "redemption_id",
    "reversal_id",
    "order_id",
    "code",
    "campaign_id",
    "merchant_id",
    "store_id",
    "business_date",
    "due_date",
    "rule_id",
    "rule_version",
    "commission",
    "amount",
)


# Held lines a statement lists per party (its held section's amounts and counts are exact whatever
# their number: coupons.data.settlement_held keeps the totals).
HELD_LISTED = 100


def statement(
    run: dict[str, Any],
    party: str,
    lines: list[dict[str, Any]],
    record: dict[str, Any],
    *,
    held: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None,
) -> dict:
    """One party's statement for one run: every line it was settled on, and per currency the totals,
    which equal the transfer: Σ lines = transfer (signed) + carried. `held`: (totals per currency, the
    first listed lines) of what the run left waiting on a risk hold; it becomes the "held" section, and
    a currency with only held lines gets a total of 0 (nothing transferred: the run's record and totals
    are untouched)."""
    ordered = sorted(lines, key=lambda x: (x["currency"], x.get("business_date", ""), x["journal_id"]))
    totals = []
    for currency, outcome in sorted(record.get("currencies", {}).items()):
        charged = sum(x.get("commission", 0) for x in lines if x["currency"] == currency)
        totals.append(
            {
                "currency": currency,
                "lines": outcome["lines"],
                # Gross: what the lines were before the platform's commission; net = gross − commission.
                **({"gross": outcome["net"] + charged, "commission": charged} if charged else {}),
                "net": outcome["net"],
                "decision": outcome["decision"],
                "transfer": outcome["transfer"],
                "carried_forward": outcome["carried"],
                "instruction_id": outcome.get("instruction_id"),
                "channel_reference": outcome.get("channel_reference"),
                # Netted since the ledger posts transfers (older runs have none of these).
                **{
                    k: outcome[k]
                    for k in ("opening_balance", "fee", "fee_borne_by", "transferred")
                    if outcome.get(k) is not None
                },
                **(
                    # The transfer's journal settles the net; a carried amount stays owed.
                    {"closing_balance": outcome["opening_balance"] + outcome["carried"]}
                    if outcome.get("opening_balance") is not None
                    else {}
                ),
            }
        )
    document = {
        "run_id": run["run_id"],
        "business_date": run["business_date"],
        "party": party,
        "totals": totals,
        "lines": [{k: line.get(k) for k in STATEMENT_COLUMNS if line.get(k) is not None} for line in ordered],
    }
    if held and held[0]:
        section = held_section(*held)
        netted = {t["currency"] for t in totals}
        zero = {"lines": 0, "net": 0, "decision": Decision.NONE.value, "transfer": 0, "carried_forward": 0,
                "instruction_id": None, "channel_reference": None}  # fmt: skip
        totals += [{"currency": h["currency"], **zero} for h in section if h["currency"] not in netted]
        totals.sort(key=lambda t: t["currency"])
        document["held"] = section
    return document


def held_section(totals: list[dict[str, Any]], listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per currency what waits: the exact `amount` and `count`, the listed lines (each with
    `held_because`), and `unlisted` when there are more than the statement lists."""
    by_currency = {s["currency"]: s["lines"] for s in holds.held_section(listed)}
    section = []
    for total in sorted(totals, key=lambda t: t["currency"]):
        shown = by_currency.get(total["currency"], [])
        entry = {
            "currency": total["currency"],
            "amount": total["amount"],
            "count": total["count"],
            "lines": shown,
        }
        if total["count"] > len(shown):
            entry["unlisted"] = total["count"] - len(shown)
        section.append(entry)
    return section


def _because(line: dict[str, Any]) -> str:
    why = line.get("held_because", {})
    return why.get("review_hold") or f"{why.get('hold_id', '')}: {why.get('reason', '')}"


def statement_csv(document: dict[str, Any]) -> str:
    """The statement's lines as CSV, then one TOTAL row per currency (amount = the net), then what waits
    on a risk hold, in none of the totals: a row per listed held line (decision HELD, `held_because`
    saying why) and a HELD_TOTAL row per currency (its exact amount; `held_because`: how many lines)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run_id", "party", *STATEMENT_COLUMNS, "held_because", *_CSV_TOTAL_COLUMNS])
    blank = [""] * len(_CSV_TOTAL_COLUMNS)
    for line in document["lines"]:
        writer.writerow(
            [document["run_id"], document["party"], *(line.get(k, "") for k in STATEMENT_COLUMNS), "", *blank]
        )
    for total in document["totals"]:
        row = {k: "" for k in STATEMENT_COLUMNS}
        row.update(currency=total["currency"], source_kind="TOTAL", amount=total["net"])
        writer.writerow(
            [
                document["run_id"],
                document["party"],
                *row.values(),
                "",
                total["decision"],
                total["transfer"],
                total["carried_forward"],
                total["channel_reference"] or "",
                *(total.get(k, "") for k in ("opening_balance", "fee", "transferred", "closing_balance")),
            ]
        )
    held = ["HELD", *blank[1:]]
    for section in document.get("held", []):
        for line in section["lines"]:
            row = [line.get(k, "") for k in STATEMENT_COLUMNS]
            writer.writerow([document["run_id"], document["party"], *row, _because(line), *held])
        total = {k: "" for k in STATEMENT_COLUMNS}
        total.update(currency=section["currency"], source_kind="HELD_TOTAL", amount=section["amount"])
        count = f"{section['count']} lines"
        writer.writerow([document["run_id"], document["party"], *total.values(), count, *held])
    return out.getvalue()


_CSV_TOTAL_COLUMNS = (
    "decision", "transfer", "carried_forward", "channel_reference", "opening_balance", "fee",
    "transferred", "closing_balance",
)  # fmt: skip
