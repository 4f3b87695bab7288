"""Every answer a test received, checked against the OpenAPI document: its status is documented for the
route, its media type too, and its body fits the documented schema. One check over all recorded
answers (tests/conftest.py runs it at the end of the session), so a new route cannot escape it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # as called, without the query
    status: int
    content_type: str
    body: str | None


RECORDED: list[Recorded] = []


def record(method: str, path: str, status: int, content_type: str, body: str | None) -> None:
    RECORDED.append(Recorded(method.lower(), path.split("?", 1)[0], status, content_type, body))


def _templates(doc: dict[str, Any]) -> list[tuple[re.Pattern, str]]:
    found = []
    for template in doc["paths"]:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        found.append((re.compile(f"^{pattern}$"), template))
    # A literal segment beats a parameter (/v1/redemptions/quote before /v1/redemptions/{id}).
    found.sort(key=lambda t: t[1].count("{"))
    return found


def problems_in(doc: dict[str, Any], recorded: list[Recorded]) -> list[str]:
    """What does not conform, one line each (the same failure once)."""
    templates = _templates(doc)
    components = {"components": doc.get("components", {})}
    out: dict[str, None] = {}
    for answer in recorded:
        template = next((t for p, t in templates if p.match(answer.path)), None)
        operation = doc["paths"].get(template, {}).get(answer.method) if template else None
        where = f"{answer.method.upper()} {template or answer.path} → {answer.status}"
        if operation is None:
            if answer.path == "/v1/openapi.json":  # the document itself is not one of its routes
                continue
            if answer.status in (401, 404, 405):  # no such route: the API says so, as documented globally
                continue
            out[f"{where}: the route is not in the document"] = None
            continue
        responses = operation.get("responses", {})
        documented = responses.get(str(answer.status)) or responses.get("default")
        if documented is None:
            out[f"{where}: status not documented (documented: {sorted(responses)})"] = None
            continue
        content = documented.get("content")
        if not content:
            if answer.body:
                out[f"{where}: a body where none is documented"] = None
            continue
        media = answer.content_type.split(";", 1)[0].strip().lower()
        if media not in content:
            out[f"{where}: media type {media!r} not documented ({sorted(content)})"] = None
            continue
        schema = content[media].get("schema")
        if schema is None or not media.endswith("json"):
            continue
        try:
            body = json.loads(answer.body or "null")
        except json.JSONDecodeError:
            out[f"{where}: the body is not JSON"] = None
            continue
        errors = sorted(Draft202012Validator({**schema, **components}).iter_errors(body), key=str)
        if errors:
            first = errors[0]
            at = "/".join(str(p) for p in first.absolute_path)
            out[f"{where}: body does not fit its schema at /{at}: {first.message[:160]}"] = None
    return list(out)
