"""Instant settlement's own items (coupons.data.instant); an instant payout itself is a settlement run
of one party (coupons.data.models.settlement: SETTLEMENT#{payout_id} / RUN, its party and lines).

  MERCHANT#{merchant_id}        / SETTLEMENT               MerchantSettlement  its settlement mode
  CAMPAIGN#{campaign_id}        / SETTLEMENT               CampaignSettlement  its settlement mode
  INSTANT#{party}#{YYYY-MM-DD}  / {payout_id}#{currency}   InstantStatementLine one payout of the day
"""

from __future__ import annotations

from coupons.data.models.base import Integer, MainModel, Text

SETTLEMENT_SK = "SETTLEMENT"
MERCHANT_SETTLEMENT_KIND, INSTANT_LINE_KIND = "MERCHANT_SETTLEMENT", "INSTANT_STATEMENT_LINE"
CAMPAIGN_SETTLEMENT_KIND = "CAMPAIGN_SETTLEMENT"


def merchant_settlement_pk(merchant_id: str) -> str:
    return f"MERCHANT#{merchant_id}"


def instant_statement_pk(party: str, day: str) -> str:
    return f"INSTANT#{party}#{day}"


def instant_line_sk(payout_id: str, currency: str) -> str:
    return f"{payout_id}#{currency}"


class MerchantSettlement(MainModel):
    """A merchant's own settlement mode (SCHEDULED | INSTANT), set by an admin; absent: the tenant's."""

    kind = Text()
    merchant_id = Text()
    mode = Text()
    updated_at = Text()
    updated_by = Text(null=True)


class CampaignSettlement(MainModel):
    """A campaign's settlement mode (SCHEDULED | INSTANT), set by an admin, beside the campaign's own
    item in its partition (campaign_pk): INSTANT makes its merchants' redemption postings instant,
    whatever their own mode; absent or SCHEDULED adds nothing (their own modes decide)."""

    kind = Text()
    campaign_id = Text()
    mode = Text()
    updated_at = Text()
    updated_by = Text(null=True)


class SettlementSetting(MainModel):
    """Either of the two settings above, for the payout's one batch read of a batch's merchants' and
    campaigns' modes (one BatchGetItem over both families; `kind` says which)."""

    kind = Text()
    merchant_id = Text(null=True)
    campaign_id = Text(null=True)
    mode = Text()
    updated_at = Text(null=True)
    updated_by = Text(null=True)


class InstantStatementLine(MainModel):
    """One instant payout of a party in one currency, on the party's statement of the day: an item of
    its own (the statement is a Query of the day's partition), so nothing grows per payout."""

    kind = Text()
    party = Text()
    day = Text()
    payout_id = Text()
    currency = Text()
    amount = Integer()  # what the party was owed: the payout's net (Σ of its postings)
    transferred = Integer()  # what the channel moved (amount − a party-borne fee)
    fee = Integer()
    postings = Integer()
    instruction_id = Text()
    channel_reference = Text()
    window = Text()
    sent_at = Text()


# -- the threshold flush (coupons.data.instant_pending) ----------------------------------------------
# Per party, currency and window (clearing's time, aligned as coupons.domain.instant.window_start):
#   IPENDING#{party}#{currency}#{YYYYMMDDHHMMSS}  / TOTAL            PendingTotal  what cleared, what is left
#   IPENDING#{party}#{currency}#{YYYYMMDDHHMMSS}  / P#{journal_id}   PendingMark   one posting of it
PENDING, PENDING_TOTAL_SK, PENDING_MARK = "IPENDING#", "TOTAL", "P#"
PENDING_TOTAL_KIND, PENDING_MARK_KIND = "INSTANT_PENDING", "INSTANT_PENDING_POSTING"


def pending_pk(party: str, currency: str, window: str) -> str:
    """`window`: the window's start as YYYYMMDDHHMMSS (UTC)."""
    return f"{PENDING}{party}#{currency}#{window}"


def pending_mark_sk(journal_id: str) -> str:
    return f"{PENDING_MARK}{journal_id}"


class PendingTotal(MainModel):
    """What a party's redemption postings of one currency cleared in one window add up to (`amount`,
    ADDed by clearing in each posting's transaction) and what is still `remaining` to the tenant's
    flush threshold (starts at the threshold, goes down): the stream mapping that flushes is filtered
    to the record where `remaining` reaches 0 (or below). Expires with the table's TTL."""

    kind = Text()
    party = Text()
    currency = Text()
    window = Text()  # the window's start, RFC 3339
    amount = Integer()
    remaining = Integer()


class PendingMark(MainModel):
    """One posting counted into a PendingTotal, so the flush finds the party's postings of the window with
    one Query (its postings are spread over the ledger's 32 shards). Expires with the table's TTL."""

    kind = Text()
    posting_pk = Text()
    posting_sk = Text()
