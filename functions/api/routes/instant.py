"""Instant settlement (即时到账, docs/instant.md): a merchant's and a campaign's settlement mode, a party's
instant statement of the day."""

from __future__ import annotations

from typing import Annotated, Literal

from answers import CampaignSettlement, InstantStatement, MerchantSettlement, documented
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

import dependencies
from coupons.domain.instant import SettlementMode
from coupons.domain.principals import Role
from coupons.services import instant_settings
from resolver import app, caller, json_response, roles


class SetMode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Annotated[
        Literal["SCHEDULED", "INSTANT"],
        Field(
            description="INSTANT: its postings are paid as they clear, in micro-batches; SCHEDULED: by runs"
        ),
    ]


@app.put(
    "/v1/merchants/<merchant_id>/settlement",
    summary="Set a merchant's settlement mode (admin): INSTANT or SCHEDULED, in place of the tenant's default",
    tags=["settlement"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="setMerchantSettlement",
    responses=documented((200, MerchantSettlement, "the merchant's mode now")),
)
def set_mode(merchant_id: str, body: Annotated[SetMode, Body()]):
    return json_response(
        200,
        instant_settings.set_mode(
            dependencies.instant(),
            dependencies.instant_terms(),
            merchant_id,
            SettlementMode(body.mode),
            caller(),
        ),
    )


@app.get(
    "/v1/merchants/<merchant_id>/settlement",
    summary="A merchant's settlement mode in force (admin, finance, or the merchant itself)",
    tags=["settlement"],
    openapi_extensions=roles(Role.ADMIN, Role.FINANCE, Role.MERCHANT),
    operation_id="getMerchantSettlement",
    responses=documented((200, MerchantSettlement, "its own mode, or the tenant's default")),
)
def get_mode(merchant_id: str):
    return json_response(
        200,
        instant_settings.mode_of(dependencies.instant(), dependencies.instant_terms(), merchant_id, caller()),
    )


class SetCampaignMode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Annotated[
        Literal["SCHEDULED", "INSTANT"],
        Field(
            description="INSTANT: its merchants' redemption postings are paid as they clear, whatever their "
            "own mode; SCHEDULED: nothing added (each merchant's own mode decides)"
        ),
    ]


@app.put(
    "/v1/campaigns/<campaign_id>/settlement",
    summary="Set a campaign's settlement mode (admin): INSTANT pays its merchants' redemption postings "
    "as they clear",
    tags=["settlement"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="setCampaignSettlement",
    responses=documented((200, CampaignSettlement, "the campaign's mode now")),
)
def set_campaign_mode(campaign_id: str, body: Annotated[SetCampaignMode, Body()]):
    return json_response(
        200,
        instant_settings.set_campaign_mode(
            dependencies.instant(),
            dependencies.campaigns(),
            dependencies.instant_terms(),
            campaign_id,
            SettlementMode(body.mode),
            caller(),
        ),
    )


@app.get(
    "/v1/campaigns/<campaign_id>/settlement",
    summary="A campaign's settlement mode (admin, finance, or its issuer)",
    tags=["settlement"],
    openapi_extensions=roles(Role.ADMIN, Role.FINANCE, Role.ISSUER),
    operation_id="getCampaignSettlement",
    responses=documented((200, CampaignSettlement, "its own mode, or SCHEDULED (none set)")),
)
def get_campaign_mode(campaign_id: str):
    return json_response(
        200,
        instant_settings.campaign_mode_of(
            dependencies.instant(), dependencies.campaigns(), campaign_id, caller()
        ),
    )


@app.get(
    "/v1/instant-statements/<party>/<date>",
    summary="A party's instant statement of one business date: its instant payouts and their totals "
    "(admin, finance, or the party itself)",
    tags=["settlement"],
    openapi_extensions=roles(Role.ADMIN, Role.FINANCE, Role.MERCHANT),
    operation_id="getInstantStatement",
    responses=documented((200, InstantStatement, "the day's payouts; totals per currency equal them")),
)
def get_statement(party: str, date: str):
    return json_response(200, instant_settings.statement(dependencies.instant(), party, date, caller()))
