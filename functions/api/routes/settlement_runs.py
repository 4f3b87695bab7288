"""/v1/settlement-runs: start (or resume) a business date's settlement run, follow it, read statements."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

import dependencies
from coupons.api.idempotency import run_idempotent
from coupons.data.items import from_item, to_item
from coupons.domain.errors import InvalidCursor
from coupons.domain.idempotency import HEADER as IDEMPOTENCY_HEADER
from coupons.domain.principals import Role
from coupons.domain.settlement import PARTY_BUCKETS
from coupons.settlement_wiring import runs
from resolver import answered, app, caller, json_response


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    business_date: Annotated[StrictStr, Field(description="the day to settle, YYYY-MM-DD, already over")]


@app.post(
    "/v1/settlement-runs",
    summary="Start the settlement run of a business date (admin): 202 if an execution started, 200 with "
    "the existing run otherwise; a failed or stopped run is resumed; accepts Idempotency-Key",
    tags=["settlement"],
)
def start_run(request: Annotated[StartRun, Body()]):
    principal = caller(Role.ADMIN)
    event = app.current_event

    def start():
        run, started = runs().start(request.business_date, principal)
        return (202 if started else 200), {**_public(run), "started": started}

    status, body, replayed = run_idempotent(
        dependencies.idempotency(),
        scope=str(principal),
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
    summary="A run: status, totals per currency, and its parties with their transfers (paged; admin)",
    tags=["settlement"],
)
def get_run(
    run_id: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
):
    caller(Role.ADMIN)
    bucket, start = _decode(cursor, run_id)
    body, position = runs().get(run_id, bucket=bucket, start=start, limit=limit)
    return json_response(200, {**body, "next_cursor": _encode(position, run_id)})


@app.get(
    "/v1/settlement-runs/<run_id>/statements/<party>",
    summary="One party's statement in a run: JSON, or CSV with Accept: text/csv (admin; an issuer its "
    "brand; a merchant itself)",
    tags=["settlement"],
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
    return {k: v for k, v in run.items() if k not in ("kind", "execution_name")}


def _encode(position, run_id: str) -> str | None:
    if position is None:
        return None
    bucket, key = position
    plain = {"r": run_id, "b": bucket, "k": from_item(key) if key else None}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str | None, run_id: str):
    if cursor is None:
        return 0, None
    try:
        plain = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        bucket, key = plain["b"], plain["k"]
        if plain["r"] != run_id or not isinstance(bucket, int) or not 0 <= bucket < PARTY_BUCKETS:
            raise ValueError
        if key is not None and (
            set(key) != {"pk", "sk"} or key["pk"] != f"SETTLEMENT#{run_id}#PARTIES#{bucket}"
        ):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(field="cursor") from None
    return bucket, to_item(key) if key else None
