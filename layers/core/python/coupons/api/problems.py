"""Errors as RFC 9457 problem documents, each with a stable machine-readable `code`."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response

from coupons.domain.errors import DomainError, Kind

CONTENT_TYPE = "application/problem+json"
# A URN, not a URL: it names the problem kind without pointing at a host that does not serve it.
TYPE_BASE = "urn:coupon-clearing:problem:"

_STATUS = {
    Kind.INVALID: 400,
    Kind.UNAUTHENTICATED: 401,
    Kind.FORBIDDEN: 403,
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.UNPROCESSABLE: 422,
    Kind.TOO_LARGE: 413,
    Kind.UNSUPPORTED_MEDIA_TYPE: 415,
    Kind.TOO_MANY_REQUESTS: 429,
}


def problem(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    title: str | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if field:
        body["field"] = field
    body.update({k: v for k, v in extensions.items() if v is not None})
    return Response(status_code=status, content_type=CONTENT_TYPE, body=json.dumps(body), headers=headers)


def from_domain_error(error: DomainError) -> Response:
    headers = None
    retry_after = error.extra.get("retry_after")
    if error.kind is Kind.TOO_MANY_REQUESTS and retry_after is not None:
        headers = {"Retry-After": str(int(retry_after))}  # RFC 9110: whole seconds
    return problem(
        _STATUS[error.kind],
        error.code,
        error.detail,
        title=error.title,
        field=error.field,
        headers=headers,
        **error.extra,
    )


def _field_name(loc: tuple | list) -> str:
    # Powertools prefixes where the value came from ("body", "query", "header"); callers want the field.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts)


def from_validation_errors(errors: list[dict[str, Any]]) -> Response:
    """A 400 naming every offending field; malformed JSON is a 400 of its own kind."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem(400, "malformed_json", "The request body is not valid JSON", title="Malformed JSON")
    listed = [
        {"field": _field_name(e.get("loc", ())) or "body", "message": e.get("msg", ""), "type": e.get("type")}
        for e in errors
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in listed)
    return problem(
        400,
        "validation_failed",
        detail,
        title="The request is not valid",
        field=listed[0]["field"] if listed else None,
        errors=listed,
    )


def as_proxy(response: Response) -> dict[str, Any]:
    """The Lambda-proxy answer for a problem produced outside the resolver (before routing)."""
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": CONTENT_TYPE},
        "multiValueHeaders": {},
        "body": response.body,
        "isBase64Encoded": False,
    }
