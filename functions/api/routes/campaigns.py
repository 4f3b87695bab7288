"""/v1/campaigns: create, read, list campaigns, move them through their lifecycle, issue coupons."""

from __future__ import annotations

from typing import Annotated

from answers import (
    BulkIssue,
    Campaign,
    CampaignPage,
    IssuedCoupon,
    MerchantCampaignView,
    documented,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

import dependencies
from coupons.domain.campaigns import CampaignTerms, PartyId, UserId
from coupons.domain.codes import display
from coupons.domain.errors import InvalidField
from coupons.domain.principals import Role
from coupons.domain.risk.fields import ClientIp, DeviceId, normalized_ip
from coupons.services import campaigns, funding
from resolver import app, caller, created, json_response, roles, subjects


@app.post(
    "/v1/campaigns",
    summary="Create a campaign (admin, issuer); accepts Idempotency-Key",
    tags=["campaigns"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="createCampaign",
    responses=documented((201, Campaign, "the campaign, status DRAFT")),
)
def create_campaign(terms: Annotated[CampaignTerms, Body()]):
    principal = caller(Role.ADMIN, Role.ISSUER)
    return created(
        lambda completion: campaigns.create(
            dependencies.campaigns(),
            terms,
            principal,
            check_rule=lambda rule_id, brand: funding.usable_by_campaign(
                dependencies.ledger(), rule_id, brand
            ),
            completion=completion,
        )
    )


@app.get(
    "/v1/campaigns/<campaign_id>",
    summary="Read a campaign (a merchant that may redeem it: the till's view only)",
    tags=["campaigns"],
    operation_id="getCampaign",
    responses=documented(
        (200, Campaign | MerchantCampaignView, "the campaign; for a merchant, MerchantCampaignView")
    ),
)
def get_campaign(campaign_id: str):
    return json_response(200, campaigns.get(dependencies.campaigns(), campaign_id, caller()))


@app.get(
    "/v1/campaigns",
    summary="List campaigns, newest first (admin: all; issuer: its brand's)",
    tags=["campaigns"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="listCampaigns",
    responses=documented((200, CampaignPage, "a page of campaigns")),
)
def list_campaigns(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
):
    items, next_cursor = campaigns.list_for(dependencies.campaigns(), caller(), limit=limit, cursor=cursor)
    return json_response(200, {"items": items, "next_cursor": next_cursor})


def _transition(action: str, campaign_id: str):
    principal = caller()
    return created(
        lambda completion: campaigns.transition(
            dependencies.campaigns(), campaign_id, action, principal, completion=completion
        ),
        status=200,
    )


@app.post(
    "/v1/campaigns/<campaign_id>/activate",
    summary="DRAFT or PAUSED → ACTIVE",
    tags=["campaigns"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="activateCampaign",
    responses=documented((200, Campaign, "the campaign, ACTIVE")),
)
def activate_campaign(campaign_id: str):
    return _transition("activate", campaign_id)


@app.post(
    "/v1/campaigns/<campaign_id>/pause",
    summary="ACTIVE → PAUSED: issuing stops",
    tags=["campaigns"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="pauseCampaign",
    responses=documented((200, Campaign, "the campaign, PAUSED")),
)
def pause_campaign(campaign_id: str):
    return _transition("pause", campaign_id)


@app.post(
    "/v1/campaigns/<campaign_id>/end",
    summary="→ ENDED, for good",
    tags=["campaigns"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="endCampaign",
    responses=documented((200, Campaign, "the campaign, ENDED")),
)
def end_campaign(campaign_id: str):
    return _transition("end", campaign_id)


class IssueRequest(BaseModel):
    """One user (`user_id`) or up to 500 (`user_ids`), never both."""

    model_config = ConfigDict(extra="forbid")

    user_id: UserId | None = None
    user_ids: Annotated[list[UserId], Field(min_length=1, max_length=500)] | None = None
    segment: PartyId | None = Field(default=None, description="the users' segment, for a targeted campaign")
    device_id: DeviceId | None = Field(default=None, description="the end user's device (risk rules)")
    client_ip: ClientIp | None = Field(default=None, description="the end user's IP address (risk rules)")

    _client_ip = field_validator("client_ip")(normalized_ip)

    @model_validator(mode="after")
    def _one_or_many(self):
        if self.user_ids is not None and len(set(self.user_ids)) != len(self.user_ids):
            raise InvalidField("user_ids must not repeat a user", field="user_ids")
        return self


@app.post(
    "/v1/campaigns/<campaign_id>/coupons",
    summary="Issue a coupon to user_id (201), or to user_ids in bulk (200, each user's outcome)",
    tags=["coupons"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="issueCoupons",
    responses=documented(
        (201, IssuedCoupon, "user_id: the coupon issued"), (200, BulkIssue, "user_ids: each user's outcome")
    ),
)
def issue_coupons(campaign_id: str, request: Annotated[IssueRequest, Body()]):
    principal = caller()
    if (request.user_id is None) == (request.user_ids is None):
        raise InvalidField("give exactly one of user_id or user_ids", field="user_id")
    issuer = dependencies.issuer()
    campaign = issuer.campaign_for(campaign_id, principal)
    if request.user_id is not None:
        return created(
            lambda completion: issuer.issue_one(
                campaign,
                request.user_id,
                segment=request.segment,
                issued_by=str(principal),
                completion=completion,
                subjects=subjects(request),
            ),
            shape=_issued,
        )
    return created(
        lambda completion: issuer.issue_many(
            campaign,
            request.user_ids,
            segment=request.segment,
            issued_by=str(principal),
            completion=completion,
            subjects=subjects(request),
        ),
        status=200,
    )


def _issued(coupon: dict) -> dict:
    return {**{k: v for k, v in coupon.items() if k != "shard"}, "display_code": display(coupon["code"])}
