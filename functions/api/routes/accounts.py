"""/v1/accounts/{account}: ledger balances and postings (admin; an issuer its brand; a merchant itself)."""

from __future__ import annotations

from typing import Annotated

from answers import Balance, EntryPage, documented
from aws_lambda_powertools.event_handler.openapi.params import Query

import dependencies
from coupons.domain.dates import IsoDate
from coupons.services import accounts
from resolver import app, caller, json_response

# Before and after any business date: the whole ledger.
FIRST_DAY, LAST_DAY = "0000-01-01", "9999-12-31"


@app.get(
    "/v1/accounts/<account>/balance",
    summary="Balance per currency: now, or as of the end of a business date (?as_of=YYYY-MM-DD)",
    tags=["clearing"],
    operation_id="getAccountBalance",
    responses=documented((200, Balance, "balances per currency")),
)
def account_balance(account: str, as_of: Annotated[IsoDate | None, Query()] = None):
    return json_response(200, accounts.balance(dependencies.ledger(), account, caller(), as_of=as_of))


@app.get(
    "/v1/accounts/<account>/entries",
    summary="Postings with business dates in [from, to], paged",
    tags=["clearing"],
    operation_id="listAccountEntries",
    responses=documented((200, EntryPage, "a page of postings")),
)
def account_entries(
    account: str,
    from_date: Annotated[IsoDate | None, Query(alias="from")] = None,
    to_date: Annotated[IsoDate | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
):
    items, next_cursor = accounts.entries(
        dependencies.ledger(),
        account,
        caller(),
        from_date=from_date or FIRST_DAY,
        to_date=to_date or LAST_DAY,
        limit=limit,
        cursor=cursor,
    )
    return json_response(200, {"items": items, "next_cursor": next_cursor})
