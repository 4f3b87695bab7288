"""Statement amounts: major-unit text read exactly into minor units (no float anywhere), with the
currency's decimals from the money module's ISO 4217 table."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.money import _MINOR_UNITS, MAX_AMOUNT
from coupons.domain.reconciliation.amounts import AmountFormatError, format_major, parse_major

currencies = st.sampled_from(sorted(_MINOR_UNITS))


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("123.45", "CNY", 12345), ("0.01", "CNY", 1), ("12.5", "CNY", 1250), ("7", "CNY", 700),
     ("1200", "JPY", 1200), ("1.234", "KWD", 1234), ("90071992547409.93", "CNY", 9007199254740993)],
)  # fmt: skip
def test_an_amount_in_major_units_is_read_exactly_into_minor_units(text, currency, minor):
    assert parse_major(text, currency) == minor


def test_an_amount_beyond_a_double_s_precision_is_still_exact_because_no_float_is_involved():
    assert parse_major("90071992547409.93", "CNY") == 9_007_199_254_740_993
    assert float("90071992547409.93") * 100 != 9_007_199_254_740_993


@pytest.mark.parametrize(
    ("text", "currency"), [("1.001", "CNY"), ("1.5", "JPY"), ("0.0001", "KWD"), ("1.", "CNY")]
)
def test_more_decimals_than_the_currency_has_is_an_error_not_a_rounding(text, currency):
    with pytest.raises(AmountFormatError):
        parse_major(text, currency)


def test_zero_padding_accepts_extra_zero_decimals_only():
    assert parse_major("0.04000", "CNY", zero_padding=True) == 4
    with pytest.raises(AmountFormatError, match="more than 2 decimals"):
        parse_major("0.04001", "CNY", zero_padding=True)
    with pytest.raises(AmountFormatError):
        parse_major("0.04000", "CNY")


@pytest.mark.parametrize(
    "text", ["", "1e3", "1,000.00", " 1.00", "+1.00", "--1", "NaN", "1.0.0", "１.00", "1.00\n"]
)
def test_anything_but_digits_and_one_point_is_refused(text):
    with pytest.raises(AmountFormatError):
        parse_major(text, "CNY")


def test_a_sign_only_where_the_column_allows_one():
    assert parse_major("-0.12", "CNY", signed=True) == -12
    with pytest.raises(AmountFormatError, match="negative"):
        parse_major("-0.12", "CNY")


def test_an_unknown_currency_is_refused():
    with pytest.raises(AmountFormatError):
        parse_major("1.00", "XXX")


@given(st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT), currencies)
def test_formatting_then_parsing_gives_the_same_minor_units_in_every_currency(amount, currency):
    text = format_major(amount, currency)
    assert parse_major(text, currency, signed=True) == amount
    decimals = text.partition(".")[2]
    assert len(decimals) == _MINOR_UNITS[currency]


def test_format_refuses_a_float():
    with pytest.raises(TypeError):
        format_major(1.5, "CNY")
