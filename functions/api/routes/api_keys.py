"""/v1/api-keys: admins create and revoke the keys that stand for principals."""

from __future__ import annotations

from typing import Annotated

from answers import ApiKey, ApiKeyCreated, documented
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field, StrictStr

import dependencies
from coupons.domain.errors import ApiKeyNotFound
from coupons.domain.principals import Role, parse_principal
from coupons.services import api_keys
from resolver import app, caller, created, json_response, roles


class ApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal: Annotated[
        StrictStr, Field(max_length=80, description="admin | issuer:{brand_id} | merchant:{id}")
    ]
    description: Annotated[StrictStr, Field(max_length=200)] | None = None


def _without_secret(answer: dict) -> dict:
    # A replay must not show the key again: the plain key is shown once, then exists nowhere.
    return {k: v for k, v in answer.items() if k != "api_key"}


@app.post(
    "/v1/api-keys",
    summary="Create an API key (admin); the plain key is in this answer only",
    tags=["api-keys"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="createApiKey",
    responses=documented((201, ApiKeyCreated, "the key id, its principal and the plain key (once)")),
)
def create_api_key(request: Annotated[ApiKeyRequest, Body()]):
    admin = caller(Role.ADMIN)
    principal = parse_principal(request.principal)
    return created(
        lambda completion: api_keys.create_key(
            dependencies.api_keys(),
            principal=principal,
            description=request.description,
            created_by=str(admin),
            completion=completion,
        ),
        redact=_without_secret,
    )


@app.get(
    "/v1/api-keys/<key_id>",
    summary="Read an API key's record, never the key (admin)",
    tags=["api-keys"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="getApiKey",
    responses=documented((200, ApiKey, "the key's record")),
)
def get_api_key(key_id: str):
    caller(Role.ADMIN)
    record = dependencies.api_keys().get(key_id)
    if record is None:
        raise ApiKeyNotFound(field="key_id")
    return json_response(200, api_keys.public_view(record))


@app.delete(
    "/v1/api-keys/<key_id>",
    summary="Revoke an API key (admin)",
    tags=["api-keys"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="revokeApiKey",
    responses=documented((204, None, "revoked")),
)
def revoke_api_key(key_id: str):
    caller(Role.ADMIN)
    api_keys.revoke_key(dependencies.api_keys(), key_id)
    dependencies.authenticator().forget(key_id)
    return Response(status_code=204)
