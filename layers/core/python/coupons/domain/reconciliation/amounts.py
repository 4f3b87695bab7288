"""Amounts in a statement file: major-unit text (`123.45` CNY, `1200` JPY) read exactly into integer
minor units and written back, by string arithmetic only (never a float, never a rounding)."""

from __future__ import annotations

import re

from coupons.domain.money import is_currency, minor_units

# ASCII digits only: `\d` would also read a full-width "１" or an Arabic-Indic digit as a number.
_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


class AmountFormatError(ValueError):
    """An amount the file should not contain: not a number, a sign where none is allowed, or more
    decimals than the currency has (a fraction of a minor unit cannot be booked, and rounding it
    here would hide a difference)."""


def parse_major(text: str, currency: str, *, signed: bool = False, zero_padding: bool = False) -> int:
    """`text` in major units -> integer minor units of `currency`, exactly.

    Fewer decimals than the currency's are read as written (`12.5` CNY = 1250). More are an error,
    unless `zero_padding` and every extra digit is 0: WeChat Pay publishes fees with 5 decimals
    (`0.04000` = 4 fen), which is exact; `0.04001` is still refused. `signed`: a leading `-` is
    allowed (a fee refunded on a return)."""
    if not is_currency(currency):
        raise AmountFormatError(f"unknown currency {currency!r}")
    match = _NUMBER.fullmatch(text)
    if not match:
        raise AmountFormatError(f"{text!r} is not an amount")
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    if sign and not signed:
        raise AmountFormatError(f"{text!r}: a negative amount is not allowed here")
    digits = minor_units(currency)
    if digits == 0 and "." in text and not zero_padding:
        raise AmountFormatError(f"{text!r}: {currency} has no minor unit")
    if len(fraction) > digits:
        extra = fraction[digits:]
        if not zero_padding or extra.strip("0"):
            raise AmountFormatError(f"{text!r} has more than {digits} decimals for {currency}")
        fraction = fraction[:digits]
    value = int(whole + fraction.ljust(digits, "0"))
    return -value if sign else value


def format_major(amount: int, currency: str) -> str:
    """Integer minor units -> major-unit text with exactly the currency's decimals."""
    if type(amount) is not int:
        raise TypeError(f"amounts are integers of minor units, got {amount!r}")
    digits = minor_units(currency)
    sign, magnitude = ("-", -amount) if amount < 0 else ("", amount)
    if digits == 0:
        return f"{sign}{magnitude}"
    whole, fraction = divmod(magnitude, 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}"
