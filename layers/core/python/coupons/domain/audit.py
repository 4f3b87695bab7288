"""Audit log entries: their canonical bytes (what the Merkle tree's leaves hash) and the redaction of a
table change into an entry's fields. Pure: no AWS, no clock (the caller gives the time, already formatted).

An entry is {"seq", "time", "kind", "fields"}: seq its 0-based position in its log (= its leaf index),
time the project's time format as a string, kind "change" (a table item changed) or "api_call".
Canonical bytes: JSON with keys sorted by their UTF-16 code units, no whitespace, UTF-8, strings escaped as
JSON.stringify does, integers only (|n| ≤ 2^53 - 1), no floats. For such values this is exactly RFC 8785
(JCS), so an independent implementation (any JCS library) reproduces every leaf hash byte for byte.
"""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal
from typing import Any

from coupons.domain import merkle

KINDS = ("change", "api_call")
MAX_SAFE_INTEGER = 2**53 - 1  # JCS numbers are IEEE doubles: beyond this an integer is not exact

REDACTED = "[redacted]"
_ENTRY_KEYS = {"seq", "time", "kind", "fields"}

# Bytes for which Python's sort_keys order or integer range may differ from JCS: a 4-byte UTF-8 sequence
# (a character above U+FFFF, sorted differently by UTF-16) or 16+ digits in a row (maybe beyond 2^53).
# decode checks those the slow, exact way; every other entry by one json.dumps.
_NEEDS_EXACT_CHECK = re.compile(rb"[\xf0-\xf4]|[0-9]{16}")
_ABOVE_BMP = re.compile(rb"[\xf0-\xf4]")

# Attribute / field names whose values never enter the log (compared lower-cased, at any depth). The log
# must record THAT they changed, never what they are: the log is readable by auditors, the secrets are not.
REDACTED_NAMES = frozenset(
    {
        "secret_hash",  # APIKEY items (coupons/data/api_keys.py): the API key's hash; enough to test guesses
        "api_key",  # the plain key, in POST /v1/api-keys' answer only; never stored, but an api_call entry may see it
        "x-api-key",  # the request header carrying it (coupons.api.auth.HEADER; a unit test keeps them equal)
        "tenant_key",  # the tenant secret (coupons/data/secrets.py) lives in Secrets Manager; named so it never leaks
        "totp_secret",  # a coupon's TOTP secret is derived, never stored (domain/verification.py); named likewise
        "otpauth_uri",  # the dynamic-code answer: carries the TOTP secret in base32
        "dynamic_code",  # a TOTP code typed at the till (valid ±30 s)
        "qr_token",  # a signed bearer token for the coupon (valid 60 s)
    }
)
# Kept on purpose: totp_step (the last accepted time step, replay protection, not secret) and
# dynamic_code_provisioned_at (when the secret was handed out): an auditor needs both.


class InvalidEntry(ValueError):
    """A value the canonical encoding cannot carry (a float, a huge integer, a non-string key…)."""


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as err:  # a lone surrogate: not a Unicode string JCS can carry
                raise InvalidEntry(f"{path}: not valid Unicode") from err
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise InvalidEntry(f"{path}: integer {value} is beyond ±2^53-1")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEntry(f"{path}: key {key!r} is not a string")
            _check(key, f"{path}.{key}")
            _check(item, f"{path}.{key}")
        return
    raise InvalidEntry(f"{path}: {type(value).__name__} is not canonical (integers, strings, bools, null only)")


def _sorted(value: Any) -> Any:
    # JCS orders keys by UTF-16 code units; Python's sort_keys orders by code points (they differ above U+FFFF).
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value, key=lambda k: k.encode("utf-16-be"))}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value


def canonical(value: Any) -> bytes:
    """The canonical bytes of a JSON value (module docstring); InvalidEntry for what it cannot carry."""
    _check(value, "$")
    out = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if _ABOVE_BMP.search(out):  # only then can code-point order differ from UTF-16 order
        out = json.dumps(_sorted(value), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return out


def entry(seq: int, time: str, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InvalidEntry(f"seq must be an integer ≥ 0, not {seq!r}")
    if not isinstance(time, str) or not time:
        raise InvalidEntry(f"time must be the formatted time string, not {time!r}")
    if kind not in KINDS:
        raise InvalidEntry(f"kind must be one of {KINDS}, not {kind!r}")
    if not isinstance(fields, dict):
        raise InvalidEntry("fields must be an object")
    return {"seq": seq, "time": time, "kind": kind, "fields": fields}


def entry_bytes(seq: int, time: str, kind: str, fields: dict[str, Any]) -> bytes:
    return canonical(entry(seq, time, kind, fields))


def entry_leaf_hash(data: bytes) -> bytes:
    return merkle.leaf_hash(data)




def _no_float(text: str):
    raise InvalidEntry(f"{text} is not an integer")


def decode(data: bytes) -> dict[str, Any]:
    """The entry in canonical bytes; InvalidEntry if they are not an entry or not canonical (the writer
    never writes other bytes, so non-canonical bytes were written by someone else)."""
    try:
        value = json.loads(data, parse_float=_no_float, parse_constant=_no_float)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidEntry(f"not JSON: {err}") from err
    if not isinstance(value, dict) or value.keys() != _ENTRY_KEYS:
        raise InvalidEntry("not an audit entry (keys seq, time, kind, fields)")
    value = entry(value["seq"], value["time"], value["kind"], value["fields"])
    try:
        if _NEEDS_EXACT_CHECK.search(data):
            again = canonical(value)
        else:
            again = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError as err:
        raise InvalidEntry("not valid Unicode") from err
    if again != data:
        raise InvalidEntry("not in canonical form")
    return value


# --- table changes -> entry fields ---------------------------------------------------------------------


def redact(value: Any) -> Any:
    """`value` with every REDACTED_NAMES member's value replaced by REDACTED, at any depth."""
    if isinstance(value, dict):
        return {k: REDACTED if k.lower() in REDACTED_NAMES else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    # Stream images as powertools decodes them (its DynamoDBStreamEvent): a number is a Decimal, kept an
    # int when whole, else (the project stores none) its exact decimal string rather than refused, so one
    # odd item cannot stop the log; string sets come as sorted lists.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, bytes | bytearray):  # a binary attribute: its base64, so the entry stays JSON
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return value


def item_kind(image: dict[str, Any]) -> str:
    """An item's kind from its partition key: "CAMPAIGN#c-1" -> "CAMPAIGN" (coupons/data/schema.py)."""
    return str(image.get("pk", "")).split("#", 1)[0]


def changes(kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """What a stream record changed: {"item": kind, "key": {pk, sk}, "changes": {name: {"old", "new"}}}
    over the attributes whose values differ; "old" is absent for an added attribute, "new" for a removed
    one (so a stored null and an absent attribute stay different). Secrets show as REDACTED on both sides:
    the entry says the secret changed and nothing more."""
    old, new = _plain(old or {}), _plain(new or {})
    key_source = new or old
    diff: dict[str, Any] = {}
    for name in sorted(set(old) | set(new)):
        if name in old and name in new and old[name] == new[name]:
            continue
        change: dict[str, Any] = {}
        secret = name.lower() in REDACTED_NAMES
        if name in old:
            change["old"] = REDACTED if secret else redact(old[name])
        if name in new:
            change["new"] = REDACTED if secret else redact(new[name])
        diff[name] = change
    return {
        "item": kind,
        "key": {k: key_source[k] for k in ("pk", "sk") if k in key_source},
        "changes": diff,
    }
