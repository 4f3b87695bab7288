"""/v1/openapi.json: the API describes itself from its routes (public: no key needed)."""

from __future__ import annotations

import json
from functools import cache

from aws_lambda_powertools.event_handler import Response

from coupons.api.problems import CONTENT_TYPE as PROBLEM_CONTENT_TYPE
from resolver import KEYLESS_POSTS, app

OPENAPI_PATH = "/v1/openapi.json"

_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details, with a stable machine-readable `code`",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {
            "type": "string",
            "format": "uri",
            "examples": ["urn:coupon-clearing:problem:validation_failed"],
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "examples": ["validation_failed", "campaign_not_found"]},
        "detail": {"type": "string"},
        "field": {"type": "string", "description": "the offending field, for bad input"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
# Every operation may answer these (the gate, authentication, the resolver's own handlers).
_COMMON = {
    "400": "bad input; the field is named",
    "401": "missing, unknown or revoked x-api-key (unauthenticated); nothing else is a 401",
    "403": "this principal may not do this (forbidden)",
    "404": "no such resource, or not one this principal may see",
    "405": "this method is not allowed on this path (method_not_allowed; Allow lists those that are)",
    "500": "unexpected error (internal_error); nothing about it is shown",
}
_WITH_BODY = {
    "413": "the body is over 256 KiB (payload_too_large)",
    "415": "the body is not application/json (unsupported_media_type)",
}
# The operations that look a code up for a till: the guessing gate and the dynamic-code lock answer 429.
_THROTTLED = {("post", "/v1/redemptions"), ("post", "/v1/redemptions/quote")}
_RETRY_AFTER = {
    "Retry-After": {"description": "whole seconds until a retry can succeed", "schema": {"type": "integer"}}
}
_STATUS_CODES = {"400": ["malformed_json"], "404": ["route_not_found"], "405": ["method_not_allowed"]}

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "retries with the same key and body get the first answer; kept 48 h, per principal and API key",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}
_REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the first answer to this Idempotency-Key, replayed",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def _codes_by_status() -> dict[str, list[str]]:
    """Every domain error's code under the status its kind answers (coupons/api/problems.py)."""
    from coupons.api.problems import _STATUS
    from coupons.domain.errors import DomainError

    found: dict[str, set[str]] = {}
    pending = [DomainError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        found.setdefault(str(_STATUS[cls.kind]), set()).add(cls.code)
    for status, codes in _STATUS_CODES.items():
        found.setdefault(status, set()).update(codes)
    found.setdefault("500", set()).add("internal_error")
    return {status: sorted(codes) for status, codes in found.items()}


def _problem_response(description: str, codes: list[str]) -> dict:
    listed = ", ".join(f"`{c}`" for c in codes)
    return {
        "description": f"{description}. Codes: {listed}" if codes else description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


@cache
def _document() -> str:
    # Imported here: the OpenAPI models cost tens of milliseconds that no other route needs.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    doc = json.loads(
        app.get_openapi_json_schema(
            title="Coupon clearing & settlement API",
            version="1.0.0",
            description="Issue, redeem, clear and settle coupons. Amounts are integers in minor units. "
            "Errors are application/problem+json (RFC 9457) with a stable `code`. Every creating POST "
            "accepts an Idempotency-Key header.",
            security_schemes={"apiKey": APIKey(name="x-api-key", in_=APIKeyIn.header)},
            security=[{"apiKey": []}],
        )
    )
    # Powertools documents FastAPI-style 422 validation errors (and a ResponseValidationError whose
    # ValidationError it leaves out); this API answers problem documents, so the document is made to
    # say what the API really answers.
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    schemas["Problem"] = _PROBLEM_SCHEMA
    codes = _codes_by_status()
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in [s for s, r in responses.items() if "ValidationError" in json.dumps(r)]:
                del responses[status]
            if "204" in responses:
                responses["204"].pop("content", None)  # no content, by definition
            operation["security"] = [{"apiKey": []}]
            keyed = method == "post" and path not in KEYLESS_POSTS
            if keyed:
                operation.setdefault("parameters", []).append(_IDEMPOTENCY_KEY)
                for status, response in responses.items():
                    if status.startswith("2"):
                        response.setdefault("headers", {}).update(_REPLAYED)
            listed = {**_COMMON, **(_WITH_BODY if "requestBody" in operation else {})}
            listed["409"] = "refused by the current state, or the Idempotency-Key's request is in flight"
            listed["422"] = "valid, but refused by the coupon or campaign (or the Idempotency-Key was reused)"
            if (method, path) in _THROTTLED:
                listed["429"] = "too many unknown codes looked up, or wrong dynamic codes; retry after Retry-After"
            for status, description in listed.items():
                responses[status] = _problem_response(description, codes.get(status, []))
            if "429" in listed:
                responses["429"]["headers"] = _RETRY_AFTER
            body = operation.get("requestBody")
            if body is not None and not _body_required(operation):
                body["required"] = False
    _statement(doc)
    return json.dumps(doc)


def _body_required(operation: dict) -> bool:
    schema = operation["requestBody"].get("content", {}).get("application/json", {}).get("schema", {})
    # An optional body (void, a reversal) comes out of powertools as anyOf [model, null].
    return not any(option.get("type") == "null" for option in schema.get("anyOf", []))


def _statement(doc: dict) -> None:
    """A statement is JSON, or CSV with Accept: text/csv."""
    operation = doc["paths"]["/v1/settlement-runs/{run_id}/statements/{party}"]["get"]
    operation["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}


@app.get(OPENAPI_PATH, summary="This document", include_in_schema=False)
def openapi():
    return Response(status_code=200, content_type="application/json", body=_document())
