"""/v1/settlement-runs: start (or resume) a settlement date's run (daily or intraday), follow it, read
statements."""

from __future__ import annotations

from typing import Annotated, Literal

from answers import SettlementRunDetail, SettlementRunStarted, Statement, documented
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field

import dependencies
from coupons.api.idempotency import run_idempotent
from coupons.data.models.settlement import SettlementParty, parties_pk
from coupons.data.paging import decode_position, encode_position
from coupons.domain.dates import IsoDate
from coupons.domain.idempotency import HEADER as IDEMPOTENCY_HEADER
from coupons.domain.principals import Role
from coupons.domain.settlement import PARTY_BUCKETS
from coupons.settlement_wiring import runs
from resolver import answered, app, caller, idempotency_scope, json_response, roles


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    settlement_date: Annotated[
        IsoDate,
        Field(
            description="the settlement date X, YYYY-MM-DD: the run pays every posting due by X whose event "
            "came before its cut-off (daily: the start of X; intraday: the tenant's T+0 cut-off on X, local)"
        ),
    ]
    kind: Annotated[
        Literal["daily", "intraday"],
        Field(description="daily (cut at the start of X) or intraday (T+0, cut at settlement_t0_cutoff on X)"),
    ] = "daily"


@app.post(
    "/v1/settlement-runs",
    summary="Start the settlement run of a settlement date and kind (admin): 202 if an execution started, "
    "200 with the existing run otherwise; a failed or stopped run is resumed; 400 "
    "settlement_cutoff_in_future while its cut-off has not passed; accepts Idempotency-Key",
    tags=["settlement"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="startSettlementRun",
    responses=documented(
        (202, SettlementRunStarted, "an execution was started"),
        (200, SettlementRunStarted, "the run as it is (nothing started)"),
    ),
)
def start_run(request: Annotated[StartRun, Body()]):
    principal = caller(Role.ADMIN)
    event = app.current_event

    def start(completion):
        # StartExecution is outside DynamoDB: no shared transaction; the attempt carries the key's ref.
        run, started = runs().start(
            request.settlement_date, principal, kind=request.kind, completion=completion
        )
        return (202 if started else 200), {**_public(run), "started": started}

    status, body, replayed = run_idempotent(
        dependencies.idempotency(),
        scope=idempotency_scope(),
        key=event.headers.get(IDEMPOTENCY_HEADER),
        method=event.http_method,
        path=event.path,
        body=event.json_body,
        ttl_seconds=dependencies.settings().idempotency_ttl_seconds,
        run=start,
    )
    return answered(status, body, replayed)


@app.get(
    "/v1/settlement-runs/<run_id>",
    summary="A run: status, totals per currency, and its parties with their transfers (paged; admin, finance)",
    tags=["settlement"],
    openapi_extensions=roles(Role.ADMIN, Role.FINANCE),
    operation_id="getSettlementRun",
    responses=documented((200, SettlementRunDetail, "the run and a page of its parties")),
)
def get_run(
    run_id: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
):
    caller(Role.ADMIN, Role.FINANCE)
    query = {"list": "run-parties", "run": run_id}
    bucket, start = decode_position(
        SettlementParty,
        cursor,
        query,
        partitions=PARTY_BUCKETS,
        partition_key=lambda b: parties_pk(run_id, b),
    )
    body, position = runs().get(run_id, bucket=bucket, start=start, limit=limit)
    return json_response(200, {**body, "next_cursor": encode_position(SettlementParty, query, position)})


@app.get(
    "/v1/settlement-runs/<run_id>/statements/<party>",
    summary="One party's statement in a run: JSON, or CSV with Accept: text/csv (admin; an issuer its "
    "brand; a merchant itself)",
    tags=["settlement"],
    operation_id="getStatement",
    responses=documented((200, Statement, "the party's statement in the run")),
)
def get_statement(run_id: str, party: str):
    accept = (
        (app.current_event.headers or {}).get("accept")
        or (app.current_event.headers or {}).get("Accept")
        or ""
    )
    fmt = "csv" if "text/csv" in accept else "json"
    text = runs().statement(run_id, party, caller(), fmt)
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return Response(status_code=200, content_type=content_type, body=text)


def _public(run: dict) -> dict:
    return {k: v for k, v in run.items() if k not in ("kind", "execution_name", "idempotency_ref")}
