"""Money: integer minor units with their ISO 4217 currency, and exact splits of an amount into shares."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field, StrictStr

# ISO 4217 active currencies -> number of minor-unit digits (fund codes and metals, which have no
# minor unit, are left out on purpose: a coupon is never denominated in them).
_MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        [
            "AED",
            "AFN",
            "ALL",
            "AMD",
            "ANG",
            "AOA",
            "ARS",
            "AUD",
            "AWG",
            "AZN",
            "BAM",
            "BBD",
            "BDT",
            "BGN",
            "BMD",
            "BND",
            "BOB",
            "BRL",
            "BSD",
            "BTN",
            "BWP",
            "BYN",
            "BZD",
            "CAD",
            "CDF",
            "CHF",
            "CNY",
            "COP",
            "CRC",
            "CUP",
            "CVE",
            "CZK",
            "DKK",
            "DOP",
            "DZD",
            "EGP",
            "ERN",
            "ETB",
            "EUR",
            "FJD",
            "FKP",
            "GBP",
            "GEL",
            "GHS",
            "GIP",
            "GMD",
            "GTQ",
            "GYD",
            "HKD",
            "HNL",
            "HTG",
            "HUF",
            "IDR",
            "ILS",
            "INR",
            "IRR",
            "JMD",
            "KES",
            "KGS",
            "KHR",
            "KPW",
            "KYD",
            "KZT",
            "LAK",
            "LBP",
            "LKR",
            "LRD",
            "LSL",
            "MAD",
            "MDL",
            "MGA",
            "MKD",
            "MMK",
            "MNT",
            "MOP",
            "MRU",
            "MUR",
            "MVR",
            "MWK",
            "MXN",
            "MYR",
            "MZN",
            "NAD",
            "NGN",
            "NIO",
            "NOK",
            "NPR",
            "NZD",
            "PAB",
            "PEN",
            "PGK",
            "PHP",
            "PKR",
            "PLN",
            "QAR",
            "RON",
            "RSD",
            "RUB",
            "SAR",
            "SBD",
            "SCR",
            "SDG",
            "SEK",
            "SGD",
            "SHP",
            "SLE",
            "SOS",
            "SRD",
            "SSP",
            "STN",
            "SVC",
            "SYP",
            "SZL",
            "THB",
            "TJS",
            "TMT",
            "TOP",
            "TRY",
            "TTD",
            "TWD",
            "TZS",
            "UAH",
            "USD",
            "UYU",
            "UZS",
            "VED",
            "VES",
            "WST",
            "XCD",
            "XCG",
            "YER",
            "ZAR",
            "ZMW",
            "ZWG",
        ],
        2,
    ),
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}

# Amounts above this are refused as input: it keeps every amount exact in a JSON double (2**53)
# on any client, with room for sums of many amounts.
MAX_AMOUNT = 10**13


def is_currency(code: str) -> bool:
    return code in _MINOR_UNITS


def currencies() -> tuple[str, ...]:
    """Every currency an amount may be in (the ledger declares a balance attribute for each)."""
    return tuple(_MINOR_UNITS)


def minor_units(currency: str) -> int:
    """Digits after the decimal point for `currency` (CNY 2, JPY 0, KWD 3)."""
    return _MINOR_UNITS[currency]


def _known_currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError(f"{value} is not an active ISO 4217 currency")
    return value


# A currency field of any request or settings file: three capitals that ISO 4217 knows.
Currency = Annotated[
    StrictStr, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code"), AfterValidator(_known_currency)
]


@dataclass(frozen=True, slots=True)
class Money:
    amount: int  # minor units, never a float
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise TypeError(f"money amounts are integers in minor units, got {self.amount!r}")
        if not is_currency(self.currency):
            raise ValueError(f"unknown ISO 4217 currency {self.currency!r}")

    def as_dict(self) -> dict[str, object]:
        return {"amount": self.amount, "currency": self.currency}


def split(amount: int, weights: Sequence[tuple[Hashable, int]]) -> dict[Hashable, int]:
    """Split an integer `amount` into shares proportional to integer `weights`, exactly.

    Largest-remainder method: each share starts at floor(amount * w / total); the units left over
    go one each to the shares with the largest remainders. Tie-break: equal remainders are served
    in the order the weights are given (callers pass parties in their documented order). A negative
    amount is split as its absolute value and negated, so a reversal mirrors its redemption.
    The shares always sum to `amount`.
    """
    if type(amount) is not int:
        raise TypeError("amount must be an int of minor units")
    if not weights:
        raise ValueError("at least one weight is needed")
    if any(type(w) is not int or w < 0 for _, w in weights):
        raise ValueError("weights must be non-negative integers")
    total = sum(w for _, w in weights)
    if total == 0:
        raise ValueError("weights must not all be zero")
    sign, magnitude = (-1, -amount) if amount < 0 else (1, amount)
    floors = [(key, magnitude * w // total, magnitude * w % total) for key, w in weights]
    left = magnitude - sum(f for _, f, _ in floors)
    # sorted() is stable, so equal remainders keep the caller's order.
    by_remainder = sorted(range(len(floors)), key=lambda i: -floors[i][2])
    bonus = set(by_remainder[:left])
    return {key: sign * (f + (1 if i in bonus else 0)) for i, (key, f, _) in enumerate(floors)}
