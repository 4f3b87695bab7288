"""T+N due dates: calendar days without a calendar, business days with one, holidays rolled over."""

import json
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.calendars import (
    BusinessCalendar,
    cycle_days,
    due_date,
    from_environment,
    parse_calendar,
    to_environment,
)
from infra.tenants import CALENDARS_DIR, load_tenant

CN = parse_calendar(json.loads((CALENDARS_DIR / "demo.json").read_text()))
BERLIN = load_tenant("acme").business_calendar()


@given(st.dates(date(2000, 1, 1), date(2099, 12, 1)), st.integers(0, 30))
def test_without_a_calendar_t_plus_n_is_n_calendar_days(day, n):
    assert due_date(day.isoformat(), f"T+{n}") == (day + timedelta(days=n)).isoformat()


def test_t1_on_a_friday_in_berlin_is_due_on_monday():
    assert due_date("2026-11-27", "T+1", BERLIN) == "2026-11-30"


def test_t1_before_easter_rolls_over_good_friday_the_weekend_and_easter_monday():
    # Thursday 2026-04-02: Friday 3rd (Karfreitag), the weekend and Monday 6th (Ostermontag) are no business days.
    assert due_date("2026-04-02", "T+1", BERLIN) == "2026-04-07"
    assert due_date("2026-04-02", "T+2", BERLIN) == "2026-04-08"


def test_t0_on_a_holiday_or_a_weekend_rolls_to_the_next_business_day():
    assert due_date("2026-10-03", "T+0", BERLIN) == "2026-10-05"  # Saturday, Tag der Deutschen Einheit
    assert due_date("2026-12-25", "T+0", BERLIN) == "2026-12-28"
    assert due_date("2026-11-25", "T+0", BERLIN) == "2026-11-25"  # a Wednesday stays


def test_a_weekend_day_worked_in_exchange_counts_as_a_business_day_in_china():
    # Friday 2026-02-13, T+1: Saturday 14th is worked (调休) before the Spring Festival.
    assert due_date("2026-02-13", "T+1", CN) == "2026-02-14"
    # Saturday 14th, T+1: the festival runs Sunday 15th … Monday 23rd.
    assert due_date("2026-02-14", "T+1", CN) == "2026-02-24"


def test_past_its_last_day_a_calendar_still_skips_weekends():
    assert due_date("2027-01-08", "T+1", CN) == "2027-01-11"


@given(st.dates(date(2026, 1, 1), date(2027, 12, 31)), st.integers(0, 30))
def test_a_business_day_due_date_is_a_business_day_n_business_days_on_never_before_the_calendar_date(day, n):
    due = date.fromisoformat(due_date(day.isoformat(), f"T+{n}", BERLIN))
    assert BERLIN.is_business_day(due)
    assert due >= day + timedelta(days=n)
    between = [day + timedelta(days=i) for i in range(1, (due - day).days + 1)]
    assert sum(BERLIN.is_business_day(d) for d in between) == max(n, 1 if due > day else 0)


def test_a_cycle_that_is_not_t_plus_n_is_refused():
    for cycle in ("T+", "T1", "T+31", "T-1", None):
        with pytest.raises(ValueError):
            cycle_days(cycle)


def test_a_calendar_travels_through_the_function_environment_unchanged():
    assert from_environment(to_environment(BERLIN)) == BERLIN
    assert from_environment(to_environment(CN)) == CN
    assert from_environment(None) is None and from_environment("") is None


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "x", "through": "2026-12-31", "holidays": ["2026-05-01"], "working_days": ["2026-05-01"]},
        {"name": "x", "through": "2026-12-31", "working_days": ["2026-05-04"]},  # a Monday
        {"name": "x", "through": "2026-12-31", "holidays": ["2027-01-01"]},  # after `through`
        {"name": "x", "through": "2026-12-31", "holidays": ["2026-05-01", "2026-05-01"]},
        {"name": "x", "through": "2026-12-31", "weekend": ["SAT", "SUNDAY"]},
        {"name": "x", "through": "2026-12-31", "surprise": 1},
    ],
)
def test_a_malformed_calendar_is_refused(bad):
    with pytest.raises(ValueError):
        parse_calendar(bad)


def test_every_calendar_file_in_the_repo_parses_and_the_berlin_tenant_names_its_own():
    for path in CALENDARS_DIR.glob("*.json"):
        assert isinstance(parse_calendar(json.loads(path.read_text())), BusinessCalendar)
    assert BERLIN.name == "DE-BE" and load_tenant("demo").business_calendar() is None
