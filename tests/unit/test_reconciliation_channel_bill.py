"""The project's own channel statement (coupons-bill/1): written and parsed back line for line,
its summary checked, gzip or not, read as a stream."""

import gzip
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.reconciliation import channel_bill, formats
from coupons.domain.reconciliation.lines import LineStatus, LineType, StatementFormatError, StatementLine

DAY = "2026-11-24"


def line(n=1, **changes):
    base = StatementLine(
        channel="simulated", statement_date=DAY, value_date=DAY, channel_time=f"{DAY}T10:00:0{n % 10}+08:00",
        channel_reference=f"SIMBANK-{n:04d}", instruction_id=f"ins_20261124_{n:020d}", type=LineType.PAYOUT,
        status=LineStatus.SUCCESS, amount=12_345 + n, fee=74, currency="CNY",
    )  # fmt: skip
    return base.with_(**changes)


def written(lines, **header):
    out = io.StringIO()
    channel_bill.write(
        out, channel="simulated", statement_date=DAY, time_zone="Asia/Shanghai", lines=lines, **header
    )
    return out.getvalue()


def parsed(text: str | bytes, **kw):
    raw = text.encode() if isinstance(text, str) else text
    return list(
        formats.read_statement(
            io.BytesIO(raw),
            "coupons-bill",
            channel=kw.get("channel", "simulated"),
            statement_date=kw.get("date", DAY),
        )
    )


def comparable(lines):
    return [x.with_(line_no=0) for x in lines]


def test_a_written_statement_parses_back_to_the_same_lines_with_their_file_line_numbers():
    lines = [
        line(1),
        line(2, type=LineType.COLLECTION),
        line(3, type=LineType.RETURN, fee=-74),
        line(4, instruction_id=None),
    ]
    back = parsed(written(lines))
    assert comparable(back) == lines
    assert [x.line_no for x in back] == [6, 7, 8, 9]


def test_the_file_shows_amounts_in_major_units_and_a_summary_per_currency():
    text = written([line(1, amount=12_345, fee=74), line(2, amount=500, fee=0, currency="JPY")])
    assert f"{DAY}T10:00:01+08:00,SIMBANK-0001,ins_20261124_{1:020d},PAYOUT,SUCCESS,123.45,0.74,CNY" in text
    assert ",PAYOUT,SUCCESS,500,0,JPY" in text
    assert text.endswith("#total,CNY,1,123.45,0.00,0.00,0.74\n#total,JPY,1,500,0,0,0\n#end,2\n")


def test_a_gzipped_statement_is_read_the_same():
    lines = [line(n) for n in range(1, 6)]
    assert comparable(parsed(gzip.compress(written(lines).encode()))) == lines


def test_a_line_is_yielded_before_the_rest_of_the_file_is_read():
    text = written([line(n) for n in range(1, 1001)])
    consumed = []

    def source():
        for row in io.StringIO(text):
            consumed.append(row)
            yield row

    first = next(channel_bill.ChannelBill().parse(source(), channel="simulated", statement_date=DAY))
    assert first.instruction_id == f"ins_20261124_{1:020d}"
    assert len(consumed) < 10


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [("#total,CNY,3,370.41", "#total,CNY,3,370.42", "summary says"),
     ("#total,CNY,3,", "#total,CNY,2,", "summary says"),
     ("#end,3", "#end,4", "#end says"),
     (",0.74,CNY\n#summary", ",0.749,CNY\n#summary", "more than 2 decimals"),
     ("123.47", "1.2347e2", "not an amount"),
     ("#channel,simulated", "#channel,wechatpay", "expected #channel,simulated"),
     ("#statement_date,2026-11-24", "#statement_date,2026-11-23", "expected #statement_date"),
     (",PAYOUT,SUCCESS,123.47", ",PAYOUT,PENDING,123.47", "PENDING"),
     ("Asia/Shanghai", "Mars/Olympus", "unknown time zone")],
)  # fmt: skip
def test_a_file_that_does_not_add_up_or_is_not_the_format_is_refused_naming_the_line(old, new, message):
    text = written([line(1), line(2), line(3)])
    assert old in text
    with pytest.raises(StatementFormatError, match=message):
        parsed(text.replace(old, new, 1))


def test_a_truncated_file_is_refused_even_when_it_ends_on_a_whole_line():
    text = written([line(1), line(2), line(3)])
    for cut in ("#summary", "#total", "#end"):
        with pytest.raises(StatementFormatError, match="truncated"):
            parsed(text[: text.index(cut)])


def test_text_after_the_end_is_refused():
    with pytest.raises(StatementFormatError, match="after #end"):
        parsed(written([line(1)]) + "2026-11-24T10:00:00+08:00,SIM-X,,PAYOUT,SUCCESS,1.00,0.00,CNY\n")


def test_a_file_that_is_neither_utf8_nor_gzip_is_a_format_error():
    with pytest.raises(StatementFormatError):
        parsed(b"\xff\xfe\x00garbage")
    with pytest.raises(StatementFormatError):
        parsed(gzip.compress(written([line(1)]).encode())[:-20])


def test_the_line_s_day_is_its_channel_time_in_the_file_s_zone():
    back = parsed(written([line(1, channel_time="2026-11-23T16:30:00+00:00")]))
    assert back[0].value_date == DAY  # 00:30 in Shanghai


lines_strategy = st.lists(
    st.builds(
        lambda n, kind, status, amount, fee, currency, has_id: line(
            n, type=kind, status=status, amount=amount, fee=fee, currency=currency,
            instruction_id=f"ins_{n}" if has_id else None,
        ),
        st.integers(1, 10**6), st.sampled_from(list(LineType)), st.sampled_from(list(LineStatus)),
        st.integers(0, 10**13), st.integers(-(10**6), 10**6), st.sampled_from(["CNY", "JPY", "KWD", "USD"]), st.booleans(),
    ),
    max_size=30,
)  # fmt: skip


@given(lines_strategy)
def test_any_statement_round_trips_exactly_through_the_file(lines):
    assert comparable(parsed(written(lines))) == lines
