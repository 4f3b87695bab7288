"""The settlement timeline: which postings a run for settlement date X takes, and from when it may start.

A run settles a **settlement date** X with a **cut-off**, a moment: it takes every unsettled posting
due by X (due date ≤ X) whose event (the redemption or reversal) happened before the cut-off.

- The **daily run** of X (scheduled at 02:00 on X, local) has its cut-off at the start of X in the
  tenant's zone: everything of the days before X. T+1 of day X − 1 is paid on X.
- The **intraday (T+0) run** of X (scheduled at the tenant's `settlement_t0_cutoff`, e.g. 22:00) has
  its cut-off at that local time on X: what was redeemed on X before 22:00 (and is due by X) is paid
  on X; what came after waits for the daily run of X + 1.
- A run whose cut-off is still in the future is refused: the day is not cut yet.

Local times are read in the tenant's zone on X itself, so a day of 23 or 25 hours (daylight saving) is
cut where its clocks say. A cut-off time that does not exist on X (skipped by the clocks) is the moment
the clocks jump; one that exists twice is its first occurrence. Everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from coupons.domain.dates import calendar_day
from coupons.domain.errors import InvalidField
from coupons.domain.times import parse as parse_time


class RunKind(StrEnum):
    DAILY = "DAILY"  # cut at the start of X
    INTRADAY = "INTRADAY"  # cut at the tenant's T+0 cut-off on X


class CutoffInFuture(InvalidField):
    code = "settlement_cutoff_in_future"
    title = "The run's cut-off has not passed yet"


@dataclass(frozen=True)
class Cutoff:
    kind: RunKind
    settlement_date: str  # X, YYYY-MM-DD
    at: datetime  # the cut-off, UTC

    def takes(self, *, due_date: str, event_at: str | datetime) -> bool:
        """Whether a run with this cut-off settles a posting due `due_date` of an event at `event_at`."""
        moment = parse_time(event_at) if isinstance(event_at, str) else event_at
        return due_date <= self.settlement_date and moment < self.at

    @property
    def run_id(self) -> str:
        """One run per settlement date and kind: `stl_YYYYMMDD` (daily) and `stl_YYYYMMDD_t0`."""
        digits = self.settlement_date.replace("-", "")
        return f"stl_{digits}" if self.kind is RunKind.DAILY else f"stl_{digits}_t0"


def local_moment(day: date, wall: time, time_zone: str) -> datetime:
    """The UTC moment the tenant's clocks show `wall` on `day`; skipped: when the clocks jump past it;
    shown twice: the first time."""
    zone = ZoneInfo(time_zone)
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first  # exists; fold 0 is its first occurrence when it exists twice
    # In a gap: fold 1 reads it with the offset after the jump (a moment before it), fold 0 with the
    # one before (a moment after it). The jump is the first whole second whose local time is not
    # before the wall time.
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    while (high - low) > timedelta(seconds=1):
        mid = low + (high - low) // 2
        if mid.astimezone(zone).replace(tzinfo=None) >= naive:
            high = mid
        else:
            low = mid
    return high


def _wall(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def daily_cutoff(settlement_date: str, time_zone: str) -> Cutoff:
    day = date.fromisoformat(calendar_day(settlement_date))
    return Cutoff(RunKind.DAILY, day.isoformat(), local_moment(day, time(0), time_zone))


def intraday_cutoff(settlement_date: str, t0_cutoff: str, time_zone: str) -> Cutoff:
    day = date.fromisoformat(calendar_day(settlement_date))
    return Cutoff(RunKind.INTRADAY, day.isoformat(), local_moment(day, _wall(t0_cutoff), time_zone))


def cutoff_of(kind: RunKind | str, settlement_date: str, time_zone: str, t0_cutoff: str | None) -> Cutoff:
    """The cut-off of the run of `kind` for X; an intraday run needs the tenant's T+0 cut-off (400
    naming `kind` when the tenant has none: its T+0 is paid by the next daily run)."""
    if RunKind(kind) is RunKind.DAILY:
        return daily_cutoff(settlement_date, time_zone)
    if t0_cutoff is None:
        raise InvalidField("this tenant has no intraday run (no settlement_t0_cutoff)", field="kind")
    return intraday_cutoff(settlement_date, t0_cutoff, time_zone)


def last_business_date(cutoff: Cutoff, time_zone: str) -> str:
    """The latest local date with a moment before the cut-off: the daily run of X cuts at X's start, so
    X − 1; the intraday run of X, X itself."""
    return (cutoff.at - timedelta(microseconds=1)).astimezone(ZoneInfo(time_zone)).date().isoformat()


def scheduled_cutoff(
    scheduled_at: str, time_zone: str, kind: RunKind, t0_cutoff: str | None = None
) -> Cutoff:
    """A scheduled run settles the local date it fires on (the daily one at 02:00 on X settles X)."""
    day = parse_time(scheduled_at).astimezone(ZoneInfo(time_zone)).date().isoformat()
    if kind is RunKind.DAILY:
        return daily_cutoff(day, time_zone)
    if t0_cutoff is None:
        raise ValueError("an intraday run needs the tenant's settlement_t0_cutoff")
    return intraday_cutoff(day, t0_cutoff, time_zone)


def check_passed(cutoff: Cutoff, *, now: datetime) -> Cutoff:
    """A run may start once its cut-off has passed; before, the day is not cut yet (400, naming
    `settlement_date`, nothing written)."""
    if cutoff.at > now:
        raise CutoffInFuture(
            f"the cut-off of {cutoff.settlement_date} ({cutoff.kind.lower()}) is "
            f"{cutoff.at.isoformat()}, still in the future",
            field="settlement_date",
        )
    return cutoff
