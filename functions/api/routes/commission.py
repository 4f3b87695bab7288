"""/v1/commission-schedule: the platform's commission (平台抽成), versioned, admin only."""

from __future__ import annotations

from typing import Annotated

from answers import CommissionSchedule, documented
from aws_lambda_powertools.event_handler.openapi.params import Body

import dependencies
from coupons.domain.commission import ScheduleVersionTerms
from coupons.domain.principals import Role
from coupons.services import commission
from resolver import app, caller, created, json_response, roles


@app.post(
    "/v1/commission-schedule/versions",
    summary="Add a version of the commission schedule, effective from now or a later time (never the past)",
    tags=["clearing"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="addCommissionVersion",
    responses=documented((201, CommissionSchedule, "the schedule with the new version")),
)
def add_version(terms: Annotated[ScheduleVersionTerms, Body()]):
    principal = caller()
    return created(
        lambda completion: commission.add_version(
            dependencies.commission(), terms, principal, completion=completion
        )
    )


@app.get(
    "/v1/commission-schedule",
    summary="The commission schedule with all its versions (admin)",
    tags=["clearing"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="getCommissionSchedule",
    responses=documented((200, CommissionSchedule, "every version")),
)
def get_schedule():
    return json_response(200, commission.schedule(dependencies.commission(), caller()))
