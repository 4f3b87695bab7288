"""Ledger reads: an account's balance (now or as of a business date) and its postings."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from coupons.data.items import from_item, to_item
from coupons.data.ledger import LedgerStore
from coupons.domain.errors import InvalidCursor, InvalidField, NotFound
from coupons.domain.principals import ID_PATTERN, Principal, Role

_ACCOUNT = re.compile(rf"^(platform|(brand|merchant):({ID_PATTERN[1:-1]}))$")


class AccountNotFound(NotFound):
    code = "account_not_found"
    title = "No such account, or not one this principal may read"


def check_account(account: str, principal: Principal) -> str:
    """Admin: every account; an issuer: brand:{its brand}; a merchant: merchant:{itself}."""
    match = _ACCOUNT.match(account)
    if not match:
        raise InvalidField("an account is platform, brand:{id} or merchant:{id}", field="account")
    if principal.role is Role.ADMIN:
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
    found, position = store.entries(
        account, from_date=from_date, to_date=to_date, start=_decode(cursor, account), limit=limit
    )
    return found, _encode(position, account)


def _encode(position: tuple[int, dict[str, Any] | None] | None, account: str) -> str | None:
    if position is None:
        return None
    shard, key = position
    plain = {"a": account, "s": shard, "k": from_item(key) if key else None}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str | None, account: str) -> tuple[int, dict[str, Any] | None]:
    if cursor is None:
        return 0, None
    try:
        plain = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        shard, key = plain["s"], plain["k"]
        if plain["a"] != account or not isinstance(shard, int) or not 0 <= shard < 1000:
            raise ValueError
        if key is not None and (
            set(key) != {"pk", "sk"} or not str(key["pk"]).startswith(f"ENTRIES#{account}#")
        ):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(field="cursor") from None
    return shard, to_item(key) if key else None
