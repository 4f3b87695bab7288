"""Sample events from events/, turned into the request a test needs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load(name: str) -> dict[str, Any]:
    """events/<name>.json, e.g. load("api/create_campaign")."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def api_request(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    api_key: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event shaped like events/api/*.json, for this request."""
    event = copy.deepcopy(load("api/get_campaign"))
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = path
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["requestContext"]["path"] = "/prod" + path
    hdrs = {k: v for k, v in event["headers"].items() if k != "x-api-key"}
    if api_key is not None:
        hdrs["x-api-key"] = api_key
    if body is not None or raw_body is not None:
        hdrs["Content-Type"] = "application/json"
        event["body"] = raw_body if raw_body is not None else json.dumps(body)
    hdrs.update(headers or {})
    event["headers"] = hdrs
    event["multiValueHeaders"] = {k: [v] for k, v in hdrs.items()}
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    return event
