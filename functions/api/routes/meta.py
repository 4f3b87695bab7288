"""/v1/openapi.json: the API describes itself from its routes (public: no key needed)."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.event_handler import Response

from resolver import app

OPENAPI_PATH = "/v1/openapi.json"


@cache
def _document() -> str:
    # Imported here: the OpenAPI models cost tens of milliseconds that no other route needs.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    return app.get_openapi_json_schema(
        title="Coupon clearing & settlement API",
        version="1.0.0",
        description="Issue, redeem, clear and settle coupons. Amounts are integers in minor units. "
        "Errors are application/problem+json (RFC 9457) with a stable `code`.",
        security_schemes={"apiKey": APIKey(name="x-api-key", in_=APIKeyIn.header)},
        security=[{"apiKey": []}],
    )


@app.get(OPENAPI_PATH, summary="This document", include_in_schema=False)
def openapi():
    return Response(status_code=200, content_type="application/json", body=_document())
