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
- A platform commission c (coupons/domain/commission.py; none without a schedule) rides in the
  redemption's journal: merchant:M −c, platform +c; a reversal gives back its part of c the same way
  mirrored. An account appears once per journal (its legs are summed): one posting per account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coupons.domain.funding import PARTIES, Shares
from coupons.domain.money import split

if TYPE_CHECKING:
    from coupons.domain.commission import Commission


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
    # What else the journal charges, as statements show it: {"commission": {...}}, {"fee": {...}}.
    charges: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if sum(leg.amount for leg in self.legs) != 0:
            raise ValueError(f"journal {self.journal_id} does not balance: {self.legs}")
        accounts = [leg.account for leg in self.legs]
        if len(set(accounts)) != len(accounts):  # a posting is keyed by account and journal
            raise ValueError(f"journal {self.journal_id} names an account twice: {accounts}")


def party_accounts(record: dict[str, Any]) -> dict[str, str]:
    return {
        "PLATFORM": "platform",
        "BRAND": f"brand:{record['brand_id']}",
        "MERCHANT": f"merchant:{record['merchant_id']}",
    }


# The channel's own accounts (settlement:{channel} in transit, bank:{channel} confirmed, fees:{channel},
# suspense:{channel} awaiting review): reconciliation and transfer journals move money on them, but no
# settlement run pays or collects them; only party accounts (merchant:, brand:, platform) are settled.
CHANNEL_ACCOUNT_KINDS = ("settlement", "bank", "fees", "suspense")


def settled_by_runs(account: str) -> bool:
    """Whether a settlement run settles this account's postings (a party's), or never (the channel's)."""
    return account.split(":", 1)[0] not in CHANNEL_ACCOUNT_KINDS


def journal_id(source_id: str) -> str:
    """Deterministic from the source record: a redelivered record maps to the journal already posted."""
    return f"jnl_{source_id}"


def merge_legs(legs: list[Leg] | tuple[Leg, ...], *, keep: str | None = None) -> tuple[Leg, ...]:
    """One leg per account (amounts summed, first-seen order), legs of 0 left out; `keep`: the account
    that stays as a leg of 0 when nothing else is left (a journal has at least one leg)."""
    sums: dict[str, int] = {}
    for leg in legs:
        sums[leg.account] = sums.get(leg.account, 0) + leg.amount
    merged = tuple(Leg(account, amount) for account, amount in sums.items() if amount != 0)
    return merged or ((Leg(keep, 0),) if keep is not None else ())


def _legs(
    accounts: dict[str, str], shares: dict[str, int], sign: int, commission: int = 0
) -> tuple[Leg, ...]:
    owed = shares["PLATFORM"] + shares["BRAND"]
    legs = [
        Leg(accounts["PLATFORM"], -sign * shares["PLATFORM"]),
        Leg(accounts["BRAND"], -sign * shares["BRAND"]),
        Leg(accounts["MERCHANT"], sign * owed),
        # The platform's cut of the merchant's coupon revenue (signed like the journal: back on reversal).
        Leg(accounts["MERCHANT"], -sign * commission),
        Leg(accounts["PLATFORM"], sign * commission),
    ]
    return merge_legs(legs, keep=accounts["MERCHANT"])


def redemption_journal(
    redemption: dict[str, Any],
    shares: Shares | None,
    rule: dict[str, Any],
    commission: Commission | None = None,
) -> Journal:
    """`shares` None: a gift card without a rule (the brand owes the merchant the whole amount).
    `commission` None: no schedule in force, no commission (the journal is as it always was)."""
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
        legs=_legs(party_accounts(redemption), party_shares, +1, commission.amount if commission else 0),
        party_shares=party_shares,
        rule=rule,
        charges={"commission": commission.as_record()} if commission else {},
    )


def reversal_journal(
    reversal: dict[str, Any],
    cleared: dict[str, int],
    reversed_so_far: dict[str, int],
    rule: dict[str, Any],
    commission_back: int = 0,
) -> Journal:
    """The mirror of `reversal['discount_reversed']`, split over what each party has left cleared, and
    `commission_back` (commission.given_back: the reversal's part of the redemption's commission)."""
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
        legs=_legs(party_accounts(reversal), party_shares, -1, commission_back),
        party_shares=party_shares,
        rule=rule,
        charges={"commission_back": commission_back} if commission_back else {},
    )
