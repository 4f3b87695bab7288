"""/v1/risk: the block and allow lists and the rule set a redemption is checked against (admin)."""

from __future__ import annotations

import time
from typing import Annotated

from answers import RiskDecisionPage, RiskListEntry, RiskRuleSet, documented
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

import dependencies
from coupons.domain.principals import Role
from coupons.domain.risk.rules import RuleSetTerms
from coupons.domain.times import UtcTime
from coupons.services import risk
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
    summary="The rules' decisions about one subject, newest first (admin): ?subject=device:d-1, user:…,"
    " ip:…, caller_ip:…, merchant:…, coupon:…",
    tags=["risk"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="listRiskDecisions",
    responses=documented((200, RiskDecisionPage, "a page of decisions")),
)
def list_decisions(
    subject: Annotated[str, Query(pattern=risk.SUBJECT)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
):
    caller(Role.ADMIN)
    items, next_cursor = risk.decisions(dependencies.risk(), subject, limit=limit, cursor=cursor)
    return json_response(200, {"items": items, "next_cursor": next_cursor})
