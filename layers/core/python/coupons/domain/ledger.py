"""The double-entry ledger of clearing (清分): one balanced journal per redemption or reversal.

Accounts: `platform`, `brand:{brand_id}`, `merchant:{merchant_id}`. A leg's amount is what the
account is owed (+) or owes (−), in minor units; every journal's legs sum to zero, so the sum of all
balances is always zero.

- A discount D redeemed at merchant M, funded PLATFORM p / BRAND b / MERCHANT m (a largest-remainder
  split of D, ties in PARTIES order): platform −p, brand:B −b, merchant:M +(p + b). M's own share m
  is its cost: recorded on the journal, owed to nobody.
- A gift card (礼品卡) redemption of X: the brand that sold the card owes the merchant that took it:
  brand:B −X, merchant:M +X.
- A reversal posts the mirror of the part it reverses: each party gives back a share of the reversed
  amount split over what it still has cleared (a largest-remainder split weighted by those
  remainders), so no party ever gives back more than it was cleared, and reversing everything
  returns every party to zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coupons.domain.funding import PARTIES, Shares
from coupons.domain.money import split


@dataclass(frozen=True)
class Leg:
    account: str
    amount: int  # + the account is owed this; − it owes it


@dataclass(frozen=True)
class Journal:
    journal_id: str
    source_id: str  # the redemption or reversal it records
    kind: str  # REDEMPTION / REVERSAL
    currency: str
    legs: tuple[Leg, ...]
    party_shares: dict[str, int]  # what each party bears (PLATFORM / BRAND / MERCHANT)
    rule: dict[str, Any] = field(default_factory=dict)  # rule id, version, where the shares came from

    def __post_init__(self) -> None:
        if sum(leg.amount for leg in self.legs) != 0:
            raise ValueError(f"journal {self.journal_id} does not balance: {self.legs}")


def party_accounts(record: dict[str, Any]) -> dict[str, str]:
    return {
        "PLATFORM": "platform",
        "BRAND": f"brand:{record['brand_id']}",
        "MERCHANT": f"merchant:{record['merchant_id']}",
    }


def journal_id(source_id: str) -> str:
    """Deterministic from the source record: a redelivered record maps to the journal already posted."""
    return f"jnl_{source_id}"


def _legs(accounts: dict[str, str], shares: dict[str, int], sign: int) -> tuple[Leg, ...]:
    owed = shares["PLATFORM"] + shares["BRAND"]
    legs = [
        Leg(accounts["PLATFORM"], -sign * shares["PLATFORM"]),
        Leg(accounts["BRAND"], -sign * shares["BRAND"]),
        Leg(accounts["MERCHANT"], sign * owed),
    ]
    return tuple(leg for leg in legs if leg.amount != 0) or (Leg(accounts["MERCHANT"], 0),)


def redemption_journal(redemption: dict[str, Any], shares: Shares | None, rule: dict[str, Any]) -> Journal:
    """`shares` None: a gift card without a rule (the brand owes the merchant the whole amount)."""
    amount = redemption["discount"]
    if shares is None:
        party_shares = {"PLATFORM": 0, "BRAND": amount, "MERCHANT": 0}
    else:
        party_shares = {str(k): v for k, v in split(amount, shares.weights()).items()}
    return Journal(
        journal_id=journal_id(redemption["redemption_id"]),
        source_id=redemption["redemption_id"],
        kind="REDEMPTION",
        currency=redemption["currency"],
        legs=_legs(party_accounts(redemption), party_shares, +1),
        party_shares=party_shares,
        rule=rule,
    )


def reversal_journal(
    reversal: dict[str, Any], cleared: dict[str, int], reversed_so_far: dict[str, int], rule: dict[str, Any]
) -> Journal:
    """The mirror of `reversal['discount_reversed']`, split over what each party has left cleared."""
    amount = reversal["discount_reversed"]
    left = {party: cleared[party] - reversed_so_far.get(party, 0) for party in PARTIES}
    if amount > sum(left.values()):
        raise ValueError("a reversal cannot give back more than was cleared")
    if amount == 0 or not any(left.values()):
        party_shares = dict.fromkeys(PARTIES, 0)
    else:
        party_shares = {str(k): v for k, v in split(amount, [(p, left[p]) for p in PARTIES]).items()}
    return Journal(
        journal_id=journal_id(reversal["reversal_id"]),
        source_id=reversal["reversal_id"],
        kind="REVERSAL",
        currency=reversal["currency"],
        legs=_legs(party_accounts(reversal), party_shares, -1),
        party_shares=party_shares,
        rule=rule,
    )
