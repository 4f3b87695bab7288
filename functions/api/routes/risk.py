"""/v1/risk: the block and allow lists and the rule set a redemption is checked against (admin); the
settlement holds on parties and REVIEW redemptions and their releases (admin, finance)."""

from __future__ import annotations

import time
from typing import Annotated

from answers import (
    RiskDecisionPage,
    RiskHeld,
    RiskHold,
    RiskListEntry,
    RiskReviewRelease,
    RiskRuleSet,
    documented,
)
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

import dependencies
from coupons.domain.principals import Role
from coupons.domain.risk.holds import PARTY_PATTERN, HoldTerms
from coupons.domain.risk.rules import RuleSetTerms
from coupons.domain.times import UtcTime
from coupons.services import risk, risk_holds
from resolver import app, caller, created, json_response, roles


class EntryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Annotated[StrictStr, Field(min_length=1, max_length=200)] = Field(
        description="the user id, device id, IP address, merchant id or merchant_id/store_id"
    )
    reason: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    expires_at: UtcTime | None = Field(default=None, description="when the entry stops counting")


@app.post(
    "/v1/risk/lists/<list_name>/entries",
    summary="Put a value on a block or allow list (admin): block-device, allow-user, …; with a reason"
    " and an optional expiry",
    tags=["risk"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="putRiskListEntry",
    responses=documented((201, RiskListEntry, "the entry")),
)
def put_entry(list_name: str, request: Annotated[EntryRequest, Body()]):
    admin = caller(Role.ADMIN)
    return created(
        lambda _: risk.put_entry(
            dependencies.risk(),
            list_name,
            request.value,
            reason=request.reason,
            expires_at=request.expires_at,
            by=str(admin),
            now=time.time(),
        )
    )


@app.delete(
    "/v1/risk/lists/<list_name>/entries",
    summary="Take a value off a list (admin)",
    tags=["risk"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="deleteRiskListEntry",
    responses=documented((204, None, "removed")),
)
def delete_entry(list_name: str, value: Annotated[StrictStr, Query(min_length=1, max_length=200)]):
    caller(Role.ADMIN)
    risk.delete_entry(dependencies.risk(), list_name, value)
    return Response(status_code=204)


@app.post(
    "/v1/risk/rules",
    summary="Store a new version of the rule set (admin): the whole ordered set; evaluated in order, the"
    " first rule that holds decides",
    tags=["risk"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="putRiskRules",
    responses=documented((201, RiskRuleSet, "the stored version")),
)
def put_rules(terms: Annotated[RuleSetTerms, Body()]):
    admin = caller(Role.ADMIN)
    return created(lambda _: risk.rule_set_view(dependencies.risk_rules().put(terms, by=str(admin))))


@app.get(
    "/v1/risk/decisions",
    summary="The decisions about one subject, newest first (admin, finance): the rules' (?subject=device:d-1,"
    " user:…, ip:…, caller_ip:…, merchant:…, coupon:…), holds and releases (merchant:…, brand:…, platform,"
    " redemption:…) and the detector's flags (merchant:…, campaign:…)",
    tags=["risk"],
    openapi_extensions=roles(Role.ADMIN, Role.FINANCE),
    operation_id="listRiskDecisions",
    responses=documented((200, RiskDecisionPage, "a page of decisions")),
)
def list_decisions(
    subject: Annotated[str, Query(pattern=risk.SUBJECT)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
):
    caller(Role.ADMIN, Role.FINANCE)
    items, next_cursor = risk.decisions(dependencies.risk(), subject, limit=limit, cursor=cursor)
    return json_response(200, {"items": items, "next_cursor": next_cursor})


# -- settlement holds ------------------------------------------------------------------------------

HOLDERS = (Role.ADMIN, Role.FINANCE)
# A party's unsettled postings shown at most (its held section): past it the view says it is cut.
HELD_LINES = 1000


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[StrictStr, Field(min_length=1, max_length=500)]


@app.post(
    "/v1/risk/holds",
    summary="Hold a party's settlement (admin, finance): its due postings wait, on its held section, until"
    " released; the run after the release settles them",
    tags=["risk"],
    openapi_extensions=roles(*HOLDERS),
    operation_id="putRiskHold",
    responses=documented((201, RiskHold, "the hold")),
)
def put_hold(terms: Annotated[HoldTerms, Body()]):
    principal = caller(*HOLDERS)
    return created(
        lambda _: risk_holds.hold(dependencies.risk_holds(), terms, by=str(principal), at=int(time.time()))
    )


@app.post(
    "/v1/risk/holds/<hold_id>/release",
    summary="Release a party's hold (admin, finance): the next run settles what waited; releasing again"
    " answers the first release",
    tags=["risk"],
    openapi_extensions=roles(*HOLDERS),
    operation_id="releaseRiskHold",
    responses=documented((200, RiskHold, "the hold, released")),
)
def release_hold(hold_id: str):
    principal = caller(*HOLDERS)
    return created(
        lambda _: risk_holds.release(
            dependencies.risk_holds(), hold_id, by=str(principal), at=int(time.time())
        ),
        status=200,
    )


@app.post(
    "/v1/risk/reviews/<redemption_id>/release",
    summary="Release a redemption held for review (admin, finance): the next run settles its postings (and"
    " its reversals'); releasing again answers the first release",
    tags=["risk"],
    openapi_extensions=roles(*HOLDERS),
    operation_id="releaseRiskReview",
    responses=documented((200, RiskReviewRelease, "the release")),
)
def release_review(redemption_id: str, request: Annotated[ReleaseRequest, Body()]):
    principal = caller(*HOLDERS)
    return created(
        lambda _: risk_holds.release_review(
            dependencies.risk_holds(),
            dependencies.redemption_records().redemption,
            redemption_id,
            by=str(principal),
            at=int(time.time()),
            reason=request.reason,
        ),
        status=200,
    )


@app.get(
    "/v1/risk/holds",
    summary="A party's holds and what of its unsettled postings waits on a hold, per currency (admin, finance)",
    tags=["risk"],
    openapi_extensions=roles(*HOLDERS),
    operation_id="getRiskHeld",
    responses=documented((200, RiskHeld, "the party's holds and held section")),
)
def get_held(party: Annotated[str, Query(pattern=PARTY_PATTERN)]):
    caller(*HOLDERS)
    ledger = dependencies.ledger()
    unsettled: list[dict] = []
    position: tuple | None = (0, None)
    while position is not None and len(unsettled) < HELD_LINES:
        page, position = ledger.entries(
            party, from_date="0000", to_date="9999-12-31", start=position, limit=HELD_LINES
        )
        unsettled += [p for p in page if not p.get("settled") and not p.get("run_id")]
    view = risk_holds.held_view(dependencies.risk_holds(), party, unsettled[:HELD_LINES], at=int(time.time()))
    return json_response(200, view)
