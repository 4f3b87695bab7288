"""The settlement timeline in a zone with daylight saving time (the Berlin tenant): which postings the
daily and the T+0 intraday run of a settlement date take, on both sides of midnight and of the cut-off,
on ordinary days and on the days the clocks change; a cut-off in the future is refused."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.calendars import due_date
from coupons.domain.timeline import (
    CutoffInFuture,
    RunKind,
    check_passed,
    daily_cutoff,
    intraday_cutoff,
    local_moment,
    scheduled_cutoff,
)
from infra.tenants import load_tenant

BERLIN = load_tenant("acme")
ZONE, T0 = BERLIN.settlement_time_zone, BERLIN.settlement_t0_cutoff
SECOND = timedelta(seconds=1)


def utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_berlin_tenant_cuts_t0_at_22_00():
    assert (ZONE, T0) == ("Europe/Berlin", "22:00")


@pytest.mark.parametrize(
    ("day", "start", "t0"),
    [
        ("2026-01-15", "2026-01-14T23:00:00", "2026-01-15T21:00:00"),  # winter, UTC+1
        ("2026-07-15", "2026-07-14T22:00:00", "2026-07-15T20:00:00"),  # summer, UTC+2
        ("2026-03-29", "2026-03-28T23:00:00", "2026-03-29T20:00:00"),  # clocks forward at 02:00: 23 h
        ("2026-03-30", "2026-03-29T22:00:00", "2026-03-30T20:00:00"),
        ("2026-10-25", "2026-10-24T22:00:00", "2026-10-25T21:00:00"),  # clocks back at 03:00: 25 h
        ("2026-10-26", "2026-10-25T23:00:00", "2026-10-26T21:00:00"),
    ],
)
def test_the_cut_offs_of_a_day_are_its_local_midnight_and_22_00_whatever_the_offset(day, start, t0):
    assert daily_cutoff(day, ZONE).at == utc(start)
    assert intraday_cutoff(day, T0, ZONE).at == utc(t0)


@pytest.mark.parametrize("day", ["2026-01-15", "2026-03-29", "2026-03-30", "2026-10-25", "2026-10-26"])
def test_the_daily_run_of_x_takes_t1_of_the_day_before_up_to_its_last_second_and_nothing_of_x(day):
    x = date.fromisoformat(day)
    run = daily_cutoff(day, ZONE)
    yesterday = (x - timedelta(days=1)).isoformat()
    t1_due = due_date(yesterday, "T+1")
    # 23:59:59 local the day before: yesterday's business date, due X → paid on X
    assert run.takes(due_date=t1_due, event_at=run.at - SECOND)
    # 00:00:00 local on X: X's business date, T+1 due X + 1 → not this run
    assert not run.takes(due_date=due_date(day, "T+1"), event_at=run.at)
    # even a T+0 posting of X (due X) waits: its event is not before the start of X
    assert not run.takes(due_date=day, event_at=run.at)
    # T+2 of the day before is not due yet
    assert not run.takes(due_date=due_date(yesterday, "T+2"), event_at=run.at - SECOND)


@pytest.mark.parametrize("day", ["2026-01-15", "2026-03-29", "2026-10-25"])
def test_the_intraday_run_of_x_pays_t0_redeemed_before_22_00_and_the_next_daily_run_pays_what_came_after(day):
    x = date.fromisoformat(day)
    intraday = intraday_cutoff(day, T0, ZONE)
    next_daily = daily_cutoff((x + timedelta(days=1)).isoformat(), ZONE)
    before, after = intraday.at - SECOND, intraday.at
    assert intraday.takes(due_date=day, event_at=before)
    assert not intraday.takes(due_date=day, event_at=after)
    # a redemption at 22:00 or later, still on X (T+0: due X), is taken by the daily run of X + 1
    assert next_daily.takes(due_date=day, event_at=after)
    assert next_daily.takes(due_date=day, event_at=next_daily.at - SECOND)
    # T+1 of X is not the intraday run's (due X + 1)
    assert not intraday.takes(due_date=due_date(day, "T+1"), event_at=before)


@given(st.dates(date(2020, 1, 1), date(2035, 12, 31)), st.integers(0, 25 * 3600 - 1))
def test_a_t0_event_of_x_is_the_intraday_runs_exactly_when_the_local_clock_read_before_22_00(x, offset):
    event = daily_cutoff(x.isoformat(), ZONE).at + timedelta(seconds=offset)
    local = event.astimezone(ZoneInfo(ZONE))
    if local.date() != x:
        return  # a 23 h day: the draw ran into the next one
    intraday = intraday_cutoff(x.isoformat(), T0, ZONE)
    assert intraday.takes(due_date=x.isoformat(), event_at=event) == (local.time() < time(22))
    # and whatever it leaves, the daily run of X + 1 takes (what a run claims leaves the index)
    assert daily_cutoff((x + timedelta(days=1)).isoformat(), ZONE).takes(
        due_date=x.isoformat(), event_at=event
    )


def test_a_cut_off_time_the_clocks_skip_is_the_moment_they_jump_and_one_shown_twice_is_its_first():
    # 2026-03-29: 02:00 → 03:00 (02:30 does not exist); 2026-10-25: 03:00 → 02:00 (02:30 happens twice)
    assert local_moment(date(2026, 3, 29), time(2, 30), ZONE) == utc("2026-03-29T01:00:00")
    assert local_moment(date(2026, 10, 25), time(2, 30), ZONE) == utc("2026-10-25T00:30:00")


def test_a_run_whose_cut_off_is_in_the_future_is_refused_naming_the_settlement_date():
    intraday = intraday_cutoff("2026-03-29", T0, ZONE)
    with pytest.raises(CutoffInFuture) as refused:
        check_passed(intraday, now=intraday.at - SECOND)
    assert (refused.value.field, refused.value.code) == ("settlement_date", "settlement_cutoff_in_future")
    assert check_passed(intraday, now=intraday.at) is intraday
    # the daily run of X may start from X's first moment, the moment its cut-off passes
    daily = daily_cutoff("2026-03-30", ZONE)
    with pytest.raises(CutoffInFuture):
        check_passed(daily, now=utc("2026-03-29T21:59:59"))
    check_passed(daily, now=utc("2026-03-29T22:00:00"))


def test_the_schedules_settle_the_local_date_they_fire_on():
    # the daily schedule at 02:00 Berlin on 2026-03-29 (00:00 UTC: still the 28th in UTC) settles the 29th
    daily = scheduled_cutoff("2026-03-29T00:00:00Z", ZONE, RunKind.DAILY)
    assert (daily.settlement_date, daily.at, daily.run_id) == (
        "2026-03-29",
        utc("2026-03-28T23:00:00"),
        "stl_20260329",
    )
    intraday = scheduled_cutoff("2026-10-25T21:00:00Z", ZONE, RunKind.INTRADAY, T0)
    assert (intraday.settlement_date, intraday.run_id) == ("2026-10-25", "stl_20261025_t0")
    with pytest.raises(ValueError):
        scheduled_cutoff("2026-10-25T21:00:00Z", ZONE, RunKind.INTRADAY)
