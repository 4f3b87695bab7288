"""The one text form of a moment (domain/times.py): fixed width, UTC, so string order is time order —
what every condition and sort key that compares times as strings relies on."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import example, given
from hypothesis import strategies as st

from coupons.domain.times import iso, parse

# Aware datetimes in any whole-minute offset, kept a day inside datetime's range so UTC never overflows.
MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.builds(
        lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60 - 59, 23 * 60 + 59)
    ),
)


@given(MOMENTS, MOMENTS)
@example(datetime(2026, 1, 1, 0, 0, 0, 500_000, UTC), datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
@example(datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC))
def test_string_order_of_formatted_times_is_time_order(a, b):
    assert (iso(a) < iso(b)) == (a < b)
    assert (iso(a) == iso(b)) == (a == b)


@given(MOMENTS)
def test_every_formatted_time_has_one_fixed_width_in_utc_and_reads_back_as_the_same_moment(moment):
    text = iso(moment)
    assert len(text) == len("2026-01-01T00:00:00.000000Z") and text.endswith("Z") and text[19] == "."
    assert parse(text) == moment


def test_a_whole_second_is_written_with_its_microseconds():
    assert (
        iso(datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))) == "2026-03-01T00:00:00.000000Z"
    )


def test_times_in_other_forms_read_back_as_the_same_moment():
    """Text a client sent or an item stored before the fixed form (no fraction, an offset)."""
    assert parse("2026-03-01T00:00:00Z") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse("2026-03-01T08:00:00.5+08:00") == datetime(2026, 3, 1, 0, 0, 0, 500_000, UTC)
