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
_PROBLEMS = {
    "400": "bad input (validation_failed, malformed_json, invalid_cursor); the field is named",
    "401": "missing, unknown or revoked x-api-key (unauthenticated)",
    "403": "this principal may not do this (forbidden)",
    "404": "no such resource, or not one this principal may see",
    "500": "unexpected error (internal_error); nothing about it is shown",
}
_POST_PROBLEMS = {
    "409": "a request with this Idempotency-Key is still in flight (idempotency_request_in_flight)",
    "422": "this Idempotency-Key was used with another request (idempotency_key_reused)",
}

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "retries with the same key and body get the first answer; kept 48 h, per principal and API key",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
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
    # Powertools documents FastAPI-style 422 validation errors; this API answers problem documents
    # (bad input is a 400), so the document is made to say what the API really answers.
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = _PROBLEM_SCHEMA
    problem = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            listed = {**_PROBLEMS, **(_POST_PROBLEMS if method == "post" else {})}
            if method == "post" and path not in KEYLESS_POSTS:
                operation.setdefault("parameters", []).append(_IDEMPOTENCY_KEY)
            for status, description in listed.items():
                responses.setdefault(status, {"description": description, "content": problem})
    return json.dumps(doc)


@app.get(OPENAPI_PATH, summary="This document", include_in_schema=False)
def openapi():
    return Response(status_code=200, content_type="application/json", body=_document())
