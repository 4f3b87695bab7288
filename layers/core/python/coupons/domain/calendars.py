"""Business-day calendars and the due date of a T+N cycle.

Without a calendar T+N counts calendar days (the due date is the business date + N). With one (a
tenant's holiday calendar, `infra/tenants/calendars/{name}.json`) T+N counts business days: the due date
is the N-th business day after the business date, and T+0 on a day that is not a business day rolls to
the next business day, so a due date is always a business day. A business day is a day that is not a
weekend day nor a holiday, or a weekend day the calendar names a working day (调休: a Saturday worked
in exchange for a bridge day off). Past the calendar's `through` date only the weekend is known: a
calendar that ran out still skips Saturdays and Sundays, and the tenant file's test says when it must be
extended.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_CYCLE = re.compile(r"^T\+(\d{1,2})$")
# A T+N cycle beyond this many days is no settlement cycle; it also bounds the walk over a calendar.
MAX_CYCLE_DAYS = 30


@dataclass(frozen=True)
class BusinessCalendar:
    name: str
    through: date  # the last day whose holidays the calendar knows
    weekend: frozenset[int] = frozenset({5, 6})  # date.weekday(): Monday 0 … Sunday 6
    holidays: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()  # weekend days that are worked

    def __post_init__(self) -> None:
        if self.holidays & self.working_days:
            raise ValueError(f"calendar {self.name}: a day cannot be both a holiday and a working day")
        if any(day.weekday() not in self.weekend for day in self.working_days):
            raise ValueError(f"calendar {self.name}: a working day must be a weekend day")
        if len(self.weekend) > 5:
            raise ValueError(f"calendar {self.name}: a week needs at least two business days")
        late = [d for d in self.holidays | self.working_days if d > self.through]
        if late:
            raise ValueError(f"calendar {self.name}: {min(late)} is after its `through` date")

    def is_business_day(self, day: date) -> bool:
        if day in self.working_days:
            return True
        return day.weekday() not in self.weekend and day not in self.holidays

    def roll(self, day: date) -> date:
        """`day` if it is a business day, else the next one."""
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def add_business_days(self, day: date, n: int) -> date:
        """The n-th business day after `day` (n = 0: `day`, rolled)."""
        if n == 0:
            return self.roll(day)
        for _ in range(n):
            day = self.roll(day + timedelta(days=1))
        return day


def cycle_days(settlement_cycle: str) -> int:
    """N of a `T+N` cycle."""
    match = _CYCLE.fullmatch(settlement_cycle or "")
    if match is None or int(match.group(1)) > MAX_CYCLE_DAYS:
        raise ValueError(f"{settlement_cycle!r} is not a settlement cycle T+0 … T+{MAX_CYCLE_DAYS}")
    return int(match.group(1))


def due_date(business_date: str, settlement_cycle: str, calendar: BusinessCalendar | None = None) -> str:
    """The day settlement may pay a posting of `business_date` under `settlement_cycle` (T+N)."""
    day, n = date.fromisoformat(business_date), cycle_days(settlement_cycle)
    if calendar is None:
        return (day + timedelta(days=n)).isoformat()
    return calendar.add_business_days(day, n).isoformat()


# -- the file and the function environment --------------------------------------------------------


def parse_calendar(document: dict[str, Any]) -> BusinessCalendar:
    """A calendar from its file: `name`, `through`, `weekend` (day names), `holidays` and
    `working_days` (each a list of dates, or an object of date → what the day is)."""
    allowed = {"name", "description", "through", "weekend", "holidays", "working_days"}
    unknown = set(document) - allowed
    if unknown:
        raise ValueError(f"unknown calendar fields: {sorted(unknown)}")
    weekend = document.get("weekend", ["SAT", "SUN"])
    if any(name not in WEEKDAYS for name in weekend):
        raise ValueError(f"weekend days must be among {WEEKDAYS}: {weekend}")
    return BusinessCalendar(
        name=str(document["name"]),
        through=date.fromisoformat(document["through"]),
        weekend=frozenset(WEEKDAYS.index(name) for name in weekend),
        holidays=_days(document.get("holidays", [])),
        working_days=_days(document.get("working_days", [])),
    )


def _days(value: list[str] | dict[str, str]) -> frozenset[date]:
    texts = list(value)
    days = frozenset(date.fromisoformat(text) for text in texts)
    if len(days) != len(texts):
        raise ValueError("a day is listed twice")
    return days


def to_environment(calendar: BusinessCalendar) -> str:
    """The compact form a function's environment carries (the days without their names)."""
    return json.dumps(
        {
            "name": calendar.name,
            "through": calendar.through.isoformat(),
            "weekend": [WEEKDAYS[i] for i in sorted(calendar.weekend)],
            "holidays": sorted(d.isoformat() for d in calendar.holidays),
            "working_days": sorted(d.isoformat() for d in calendar.working_days),
        },
        separators=(",", ":"),
    )


def from_environment(text: str | None) -> BusinessCalendar | None:
    """None (calendar days) when the tenant has no calendar."""
    return parse_calendar(json.loads(text)) if text else None
