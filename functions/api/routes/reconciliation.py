"""/v1/reconciliation: runs and exceptions (admin, finance), and finance's resolution of an exception."""

from __future__ import annotations

from typing import Annotated, Literal

from answers import (
    ReconciliationException,
    ReconciliationExceptionPage,
    ReconciliationRun,
    ReconciliationRunPage,
    documented,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field

import dependencies
from coupons.domain.dates import IsoDate
from coupons.domain.principals import Role
from coupons.domain.reconciliation.records import ExceptionClass
from coupons.services.reconciliation_review import ACCEPT, REOPEN, RESEND, REVERSE, WRITE_OFF
from resolver import app, caller, json_response, roles

READERS = (Role.ADMIN, Role.FINANCE)
ClassName = Literal[tuple(c.value for c in ExceptionClass)]  # type: ignore[valid-type]


class Resolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal[ACCEPT, RESEND, WRITE_OFF, REVERSE, REOPEN]  # type: ignore[valid-type]
    note: Annotated[str, Field(min_length=1, max_length=2000, description="why: kept with the resolution")]
    account: Annotated[str | None, Field(max_length=200, description="WRITE_OFF: the account written off to")] = None


@app.get(
    "/v1/reconciliation/runs",
    summary="Reconciliation runs, one per channel statement file version, newest first (admin, finance)",
    tags=["reconciliation"],
    openapi_extensions=roles(*READERS),
    operation_id="listReconciliationRuns",
    responses=documented((200, ReconciliationRunPage, "a page of runs")),
)
def list_runs(
    date: Annotated[IsoDate | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
):
    caller(*READERS)
    items, next_cursor = dependencies.reconciliation_review().runs(limit=limit, cursor=cursor, date=date)
    return json_response(200, {"items": items, "next_cursor": next_cursor})


@app.get(
    "/v1/reconciliation/runs/<run_id>",
    summary="A run: lines and transfers read, confirmed, exceptions and amounts by class, compensations, "
    "its report in S3 (admin, finance)",
    tags=["reconciliation"],
    openapi_extensions=roles(*READERS),
    operation_id="getReconciliationRun",
    responses=documented((200, ReconciliationRun, "the run")),
)
def get_run(run_id: str):
    caller(*READERS)
    return json_response(200, dependencies.reconciliation_review().run(run_id))


@app.get(
    "/v1/reconciliation/exceptions",
    summary="Exceptions (paged), by status, class and date (admin, finance)",
    tags=["reconciliation"],
    openapi_extensions=roles(*READERS),
    operation_id="listReconciliationExceptions",
    responses=documented((200, ReconciliationExceptionPage, "a page of exceptions")),
)
def list_exceptions(
    status: Annotated[Literal["OPEN", "RESOLVED"] | None, Query()] = None,
    cls: Annotated[ClassName | None, Query(alias="class")] = None,
    date: Annotated[IsoDate | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
):
    caller(*READERS)
    items, next_cursor = dependencies.reconciliation_review().exceptions(
        limit=limit, cursor=cursor, status=status, cls=cls, date=date
    )
    return json_response(200, {"items": items, "next_cursor": next_cursor})


@app.get(
    "/v1/reconciliation/exceptions/<exception_id>",
    summary="One exception: both sides' evidence, the amount at stake, its compensation and history",
    tags=["reconciliation"],
    openapi_extensions=roles(*READERS),
    operation_id="getReconciliationException",
    responses=documented((200, ReconciliationException, "the exception")),
)
def get_exception(exception_id: str):
    caller(*READERS)
    return json_response(200, dependencies.reconciliation_review().exception(exception_id))


@app.post(
    "/v1/reconciliation/exceptions/<exception_id>/resolve",
    summary="Resolve an exception with an action its class allows (finance); with four-eyes on, the first "
    "call proposes (202) and another finance principal approves (200)",
    tags=["reconciliation"],
    openapi_extensions=roles(Role.FINANCE),
    operation_id="resolveReconciliationException",
    responses=documented(
        (200, ReconciliationException, "resolved (or reopened)"),
        (202, ReconciliationException, "proposed: waits for a second finance principal"),
    ),
)
def resolve(exception_id: str, request: Annotated[Resolve, Body()]):
    principal = caller(Role.FINANCE)
    status, body = dependencies.reconciliation_review().resolve(
        exception_id, request.action, request.note, principal,
        account=request.account, api_key_id=app.context.get("api_key_id"),
    )  # fmt: skip
    return json_response(status, body)
