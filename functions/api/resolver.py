"""The API's resolver and what every route shares: the caller, the request's idempotency, JSON answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

import dependencies
from coupons.api import bodies, problems
from coupons.api.idempotency import run_idempotent
from coupons.data.idempotency import Completion
from coupons.domain import idempotency as idempotency_rules
from coupons.domain.errors import DomainError, UnsupportedMediaType
from coupons.domain.idempotency import HEADER as IDEMPOTENCY_HEADER
from coupons.domain.principals import Principal, Role
from coupons.services.risk import Subjects, caller_ip

app = APIGatewayRestResolver(enable_validation=True)

ROLES = "x-roles"  # a route's openapi_extensions: the roles that may call it at all
# Every POST takes an Idempotency-Key but these, which write nothing (a quote is a read).
KEYLESS_POSTS = frozenset({"/v1/redemptions/quote"})


def _request_gate(app: APIGatewayRestResolver, next_middleware) -> Response:
    """Runs before powertools' request validation on every route: the caller may call this route at
    all (so a caller that may not learns nothing of the body's fields), and the body is one JSON
    object of bounded size and depth (coupons/api/bodies.py). Then validation."""
    route = app.context.get("_route")
    roles = (getattr(route, "openapi_extensions", None) or {}).get(ROLES)
    if roles:
        caller(*(Role(r) for r in roles))
    event = app.current_event
    key = event.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and event.http_method == "POST" and getattr(route, "path", None) not in KEYLESS_POSTS:
        idempotency_rules.check_key(key)  # one rule for every route that takes a key, before its body
    body = bodies.read(event.decoded_body, event.headers.get("content-type"))
    if body is not None and not bodies.is_malformed(body):
        # powertools compares the media type case-sensitively: say it the way it reads it.
        headers = event.raw_event.get("headers") or {}
        for name in [n for n in headers if n.lower() == "content-type"]:
            del headers[name]
        headers["content-type"] = bodies.JSON_MEDIA_TYPE
    return validate(app, next_middleware)


# powertools keeps its request validation middleware here and puts it first on every route's stack
# (built on the route's first call); the gate takes its place and calls it.
validate = app._request_validation_middleware
app._request_validation_middleware = _request_gate


def roles(*allowed: Role) -> dict[str, list[str]]:
    """A route's openapi_extensions naming who may call it (checked by the gate, shown in the document)."""
    return {ROLES: [r.value for r in allowed]}


def caller(*roles: Role) -> Principal:
    """The authenticated principal (the handler put it in the context), checked against `roles`."""
    principal: Principal = app.context["principal"]
    if roles:
        principal.require(*roles)
    return principal


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status, content_type="application/json", body=json.dumps(body), headers=headers
    )


def subjects(request: Any) -> Subjects:
    """What the risk rules see of who is behind the request: the end user's device and address as the
    till or app says (the request's device_id, client_ip), the caller's own address as API Gateway saw
    it, and the caller's API key (its code-guessing misses)."""
    identity = (app.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
    source = identity.get("sourceIp")  # absent from a hand-made event: then no caller IP
    return Subjects(
        device_id=getattr(request, "device_id", None),
        client_ip=getattr(request, "client_ip", None),
        caller_ip=caller_ip(source),
        api_key_id=app.context.get("api_key_id"),
    )


def idempotency_scope() -> str:
    """The caller's Idempotency-Keys: per principal and API key."""
    return idempotency_rules.scope(caller(), app.context.get("api_key_id"))


def created(
    run: Callable[[Completion | None], Any],
    *,
    shape: Callable[[Any], Any] | None = None,
    redact: Callable[[Any], Any] | None = None,
    restore: Callable[[Any], Any] | None = None,
    status: int = 201,
) -> Response:
    """`status` (201) with `shape(what run made)`, at most once per Idempotency-Key (a replay says so).

    `run` gets the request's Completion (None without a key) for its store to commit with the effect;
    `shape` turns what it returns into the answer, the same way for the answer and for the record.
    `redact` drops what the record must not keep; `restore` rebuilds it on a replay, where it can be
    derived again (a dynamic-code secret), so a client whose first answer was lost still gets it."""
    event = app.current_event
    shape = shape or (lambda result: result)
    status, body, replayed = run_idempotent(
        dependencies.idempotency(),
        scope=idempotency_scope(),
        key=event.headers.get(IDEMPOTENCY_HEADER),
        method=event.http_method,
        path=event.path,
        body=event.json_body,
        ttl_seconds=dependencies.settings().idempotency_ttl_seconds,
        run=lambda completion: (
            status,
            shape(run(completion.answering(status, shape) if completion else None)),
        ),
        redact=redact,
    )
    if replayed and restore is not None and 200 <= status < 300:
        body = restore(body)
    return answered(status, body, replayed)


def answered(status: int, body: Any, replayed: bool) -> Response:
    return json_response(status, body, {"Idempotent-Replayed": "true"} if replayed else None)


@app.exception_handler(DomainError)
def _domain_error(error: DomainError) -> Response:
    return problems.from_domain_error(error)


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response:
    return problems.from_validation_errors(list(error.errors()))


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(_: RequestUnsupportedContentType) -> Response:
    # The gate refuses these first; kept so that powertools' own refusal is never a 500.
    return problems.from_domain_error(UnsupportedMediaType("send application/json", field="Content-Type"))


@app.exception_handler(NotFoundError)
def _no_route(_: NotFoundError) -> Response:
    event = app.current_event
    allowed = sorted(
        route.method
        for route in app._static_routes + app._dynamic_routes  # powertools keeps no public list of routes
        if route.rule.match(event.path)
    )
    if allowed:
        return problems.problem(
            405,
            "method_not_allowed",
            f"{event.http_method} is not allowed on {event.path}",
            headers={"Allow": ", ".join(allowed)},
            allowed_methods=allowed,
        )
    return problems.problem(404, "route_not_found", f"No route {event.http_method} {event.path}")


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    from aws_lambda_powertools import Logger

    Logger().exception("unhandled error")
    return problems.problem(500, "internal_error", "An unexpected error occurred; it has been logged")
