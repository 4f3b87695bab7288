"""Ledger reads: an account's balance (now or as of a business date) and its postings."""

from __future__ import annotations

import re
from typing import Any

from coupons.data.ledger import SHARDS, LedgerStore
from coupons.data.models.ledger import Posting, entries_pk
from coupons.data.paging import decode_position, encode_position
from coupons.domain.errors import InvalidField, NotFound
from coupons.domain.principals import ID_PATTERN, Principal, Role

_ACCOUNT = re.compile(rf"^(platform|(brand|merchant):({ID_PATTERN[1:-1]}))$")
# The channel's books (reconciliation: instructed, moved, fees, 挂账): admin and finance only.
_CHANNEL_ACCOUNT = re.compile(rf"^(settlement|bank|fees|suspense):({ID_PATTERN[1:-1]})$")


class AccountNotFound(NotFound):
    code = "account_not_found"
    title = "No such account, or not one this principal may read"


def check_account(account: str, principal: Principal) -> str:
    """Admin: every account; an issuer: brand:{its brand}; a merchant: merchant:{itself}."""
    if _CHANNEL_ACCOUNT.match(account):
        if principal.role in (Role.ADMIN, Role.FINANCE):
            return account
        raise AccountNotFound(field="account")
    match = _ACCOUNT.match(account)
    if not match:
        raise InvalidField("an account is platform, brand:{id} or merchant:{id}", field="account")
    if principal.role in (Role.ADMIN, Role.FINANCE):  # finance reads everything about money
        return account
    if principal.role is Role.ISSUER and account == f"brand:{principal.brand_id}":
        return account
    if principal.role is Role.MERCHANT and account == f"merchant:{principal.merchant_id}":
        return account
    raise AccountNotFound(field="account")


def balance(store: LedgerStore, account: str, principal: Principal, *, as_of: str | None) -> dict[str, Any]:
    account = check_account(account, principal)
    if as_of is None:
        totals = store.balance(account)
    else:
        # As of a business date: the postings up to it, summed (the running balances are "now" only).
        totals, start = {}, (0, None)
        while start is not None:
            entries, start = store.entries(
                account, from_date="0000-01-01", to_date=as_of, start=start, limit=500
            )
            for entry in entries:
                totals[entry["currency"]] = totals.get(entry["currency"], 0) + entry["amount"]
    return {
        "account": account,
        "as_of": as_of,
        "balances": [{"currency": c, "amount": a} for c, a in sorted(totals.items())],
    }


def entries(
    store: LedgerStore,
    account: str,
    principal: Principal,
    *,
    from_date: str,
    to_date: str,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    account = check_account(account, principal)
    query = {"list": "entries", "account": account, "from": from_date, "to": to_date}
    start = decode_position(
        Posting, cursor, query, partitions=SHARDS, partition_key=lambda shard: entries_pk(account, shard)
    )
    found, position = store.entries(account, from_date=from_date, to_date=to_date, start=start, limit=limit)
    return found, encode_position(Posting, query, position)
