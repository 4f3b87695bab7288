"""/v1/campaigns: create, read and list campaigns."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Query

import dependencies
from coupons.domain.campaigns import Campaign, CampaignTerms
from coupons.domain.principals import Role
from coupons.services import campaigns
from resolver import app, caller, created, json_response


@app.post(
    "/v1/campaigns",
    summary="Create a campaign (admin, issuer); accepts Idempotency-Key",
    responses={
        201: {
            "description": "the campaign, status DRAFT",
            "content": {"application/json": {"model": Campaign}},
        }
    },
    tags=["campaigns"],
)
def create_campaign(terms: Annotated[CampaignTerms, Body()]):
    principal = caller(Role.ADMIN, Role.ISSUER)
    return created(lambda: campaigns.create(dependencies.campaigns(), terms, principal))


@app.get(
    "/v1/campaigns/<campaign_id>",
    summary="Read a campaign",
    responses={200: {"description": "the campaign", "content": {"application/json": {"model": Campaign}}}},
    tags=["campaigns"],
)
def get_campaign(campaign_id: str):
    return json_response(200, campaigns.get(dependencies.campaigns(), campaign_id, caller()))


@app.get(
    "/v1/campaigns",
    summary="List campaigns, newest first (admin: all; issuer: its brand's)",
    tags=["campaigns"],
)
def list_campaigns(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
):
    items, next_cursor = campaigns.list_for(dependencies.campaigns(), caller(), limit=limit, cursor=cursor)
    return json_response(200, {"items": items, "next_cursor": next_cursor})
