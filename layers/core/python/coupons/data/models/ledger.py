"""The ledger's items (coupons.data.ledger): journals, postings, sharded balances, and the source items a
journal takes out of the clearing-pending index.

  JOURNAL#{journal_id}       / JOURNAL                          Journal
  ENTRIES#{account}#{shard}  / {business_date}#{journal_id}     Posting (gsi1: UNSETTLED#{shard}, sparse)
  BALANCE#{account}#{shard}  / BALANCE                          Balance (`bal_{CUR}` per currency)
"""

from __future__ import annotations

from typing import Any

from pynamodb.constants import MAP, NUMBER

from coupons.data.models.base import Attribute, Flag, Integer, List, MainModel, Map, Text
from coupons.domain.money import currencies

ENTRIES = "ENTRIES#"
UNSETTLED = "UNSETTLED#"
JOURNAL_SK, BALANCE_SK = "JOURNAL", "BALANCE"
_INTEGER = Integer()


def journal_pk(journal_id: str) -> str:
    return f"JOURNAL#{journal_id}"


def entries_pk(account: str, shard: int | str) -> str:
    return f"{ENTRIES}{account}#{shard}"


def entry_sk(business_date: str, journal_id: str) -> str:
    return f"{business_date}#{journal_id}"


def balance_pk(account: str, shard: int | str) -> str:
    return f"BALANCE#{account}#{shard}"


def unsettled_partition(shard: int) -> str:
    """gsi1 partition of the unsettled postings of ledger shard `shard` (0..SHARDS-1)."""
    return f"{UNSETTLED}{shard}"


def unsettled_sort_key(due_date: str, account: str, journal_id: str) -> str:
    return f"{due_date}#{account}#{journal_id}"


class PartyAmounts(Attribute[dict[str, int]]):
    """A map of names to integers: what each party (coupons.domain.funding.PARTIES) bears or has given
    back, in minor units; a rule's shares, in basis points. Any names (a journal may name none); the
    values integers only (Integer: a float is refused)."""

    attr_type = MAP

    def serialize(self, value: dict[str, int]) -> dict[str, Any]:
        return {name: {NUMBER: _INTEGER.serialize(amount)} for name, amount in value.items()}

    def deserialize(self, value: dict[str, Any]) -> dict[str, int]:
        return {name: _INTEGER.deserialize(amount[NUMBER]) for name, amount in value.items()}


class Leg(Map):
    account = Text()
    amount = Integer()


class Journal(MainModel):
    """One balanced journal (coupons.domain.ledger.Journal) and what clearing adds: the dates, the
    record's ids for statements; a redemption's also counts what its reversals gave back."""

    journal_id = Text()
    source_id = Text()
    kind = Text()  # JOURNAL: the stream's clearing filter skips it
    source_kind = Text()  # REDEMPTION / REVERSAL
    currency = Text()
    legs = List(of=Leg)
    party_shares = PartyAmounts()
    rule = Map()  # rule_id (None: no rule), version, source of the shares: free-form, kept as built
    business_date = Text()
    due_date = Text()
    posted_at = Text()
    reversed = PartyAmounts()
    reversal_count = Integer()
    # What else it charges, as statements show it (coupons.domain.ledger.Journal.charges): free-form.
    charges = Map(null=True)
    run_id = Text(null=True)  # a transfer's journal: the settlement run that posted it
    # A redemption's with a commission: what its reversals gave back of it, and of the order refunded.
    commission_given_back = Integer(null=True)
    refunded = Integer(null=True)
    # Copied from the cleared record (coupons.data.ledger.POSTING_EXTRA and its cycle).
    redemption_id = Text(null=True)
    reversal_id = Text(null=True)
    campaign_id = Text(null=True)
    brand_id = Text(null=True)
    merchant_id = Text(null=True)
    store_id = Text(null=True)
    order_id = Text(null=True)
    code = Text(null=True)
    settlement_cycle = Text(null=True)
    event_at = Text(null=True)  # the redemption's redeemed_at / the reversal's reversed_at
    review_hold = Text(null=True)  # a REVIEW redemption's: its reversals' journals carry it on


class Posting(MainModel):
    """One leg of a journal on its account (append-only), until settlement claims it in gsi1
    (UNSETTLED#{shard} / {due_date}#{account}#{journal_id}); settlement then adds its run and dates."""

    account = Text()
    amount = Integer()
    currency = Text()
    journal_id = Text()
    source_id = Text()
    source_kind = Text()
    business_date = Text()
    due_date = Text()
    posted_at = Text()
    settled = Flag()
    rule_id = Text(null=True)
    rule_version = Integer(null=True)
    # The merchant's posting of a journal with a commission: the commission in its amount (a
    # redemption's +c, a reversal's −c given back), so a statement shows gross = amount + commission.
    commission = Integer(null=True)
    # When its event (the redemption / reversal) happened: a run's cut-off takes it or leaves it
    # (coupons.domain.timeline). Absent on postings cleared before it was recorded.
    event_at = Text(null=True)
    redemption_id = Text(null=True)
    reversal_id = Text(null=True)
    campaign_id = Text(null=True)
    brand_id = Text(null=True)
    merchant_id = Text(null=True)
    store_id = Text(null=True)
    order_id = Text(null=True)
    code = Text(null=True)
    # A REVIEW redemption's (review:{id}), on its postings and its reversals': held out of settlement
    # until released (coupons.domain.risk.holds).
    review_hold = Text(null=True)
    # Written by settlement (coupons.data.settlement): the run that claimed it, when, when settled.
    run_id = Text(null=True)
    claimed_at = Text(null=True)
    settled_at = Text(null=True)
    # An instant payout that failed after its retries gave the posting back to the scheduled runs
    # (coupons.data.instant.release): its id, so the posting shows why it was not paid instantly.
    left_by_payout = Text(null=True)


def balance_attribute(currency: str) -> str:
    return f"bal_{currency}"


# One shard of an account's running balance: `bal_{CUR}` per currency it has seen. Every ISO 4217
# currency a coupon may carry is declared (PynamoDB keeps only declared attributes when decoding).
Balance = type(
    "Balance",
    (MainModel,),
    {
        "__module__": __name__,
        "__doc__": "One shard of an account's running balance, per currency (`bal_{CUR}`, minor units).",
        "account": Text(),
        **{balance_attribute(c): Integer(null=True) for c in currencies()},
    },
)


class ClearedSource(MainModel):
    """The redemption / reversal item a journal records, as clearing touches it: by its key, to take it
    out of the clearing-pending index (gsi2). Its own attributes belong to coupons.data.redemptions."""
