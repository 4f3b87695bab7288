"""What a request body must be before any route reads it: JSON, an object, of bounded size and depth.

Checked once for every route (resolver.py: the request gate), so no route can forget, and before
powertools' validation, which would otherwise take the first element of a JSON array for an object
body, answer 500 for an unknown media type, and recurse into any depth of nesting.
"""

from __future__ import annotations

import json
from typing import Any

from coupons.domain.errors import InvalidField, PayloadTooLarge, UnsupportedMediaType

JSON_MEDIA_TYPE = "application/json"
# The largest body a route takes is a bulk issue of 500 user ids of up to 128 characters (~70 KB).
MAX_BODY_BYTES = 256 * 1024
# Far more than any body of this API nests (a funding rule's windows: 4 levels).
MAX_DEPTH = 16


def media_type(content_type: str | None) -> str:
    """The media type without its parameters, lower case (RFC 9110: media types are case-insensitive)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def read(raw: str | None, content_type: str | None) -> Any:
    """The parsed body (None when there is none), or a DomainError saying why it cannot be read."""
    if raw is None or raw == "":
        return None
    if len(raw.encode()) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is over {MAX_BODY_BYTES} bytes", field="body")
    kind = media_type(content_type)
    # No Content-Type is read as JSON (what powertools does, and what curl -d users expect).
    if kind and kind != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(f"{kind} is not accepted; send {JSON_MEDIA_TYPE}", field="Content-Type")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError:
        return _MALFORMED  # powertools answers malformed JSON (malformed_json) itself
    except RecursionError:
        raise InvalidField(f"the body nests deeper than {MAX_DEPTH} levels", field="body") from None
    except ValueError as error:  # e.g. an integer over Python's 4,300-digit conversion limit
        raise InvalidField(f"the body holds a value that cannot be read: {error}", field="body") from None
    if _depth(body) > MAX_DEPTH:
        raise InvalidField(f"the body nests deeper than {MAX_DEPTH} levels", field="body")
    if not isinstance(body, dict):
        raise InvalidField("the body must be a JSON object", field="body")
    return body


_MALFORMED = object()


def is_malformed(body: Any) -> bool:
    return body is _MALFORMED


def _depth(value: Any) -> int:
    """Nesting depth, without recursion (json.loads has already bounded it by the recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(current, dict):
            stack.extend((v, level + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, level + 1) for v in current)
    return deepest
