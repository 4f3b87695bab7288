"""Texts signed with the tenant key: base64url(payload) + "." + base64url(HMAC-SHA256(key, domain + payload)).

One mechanism for everything the API hands out and later takes back unread by the database: QR tokens
(`coupons.domain.verification`) and paging cursors (`coupons.domain.cursors`). Each use passes its own
domain prefix ("qr:v1:", "cursor:v1:…"), so a text signed for one use is never valid for another.
The signature is checked (constant time) before the payload is returned: nothing a caller wrote is
interpreted until it is known to be ours.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

SIGNATURE_BYTES = 32  # HMAC-SHA256
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class BadSignature(ValueError):
    """Not a text this key signed for this domain (malformed, oversize, or a wrong signature)."""


def seal(key: bytes, domain: bytes, payload: bytes) -> str:
    if not key:
        raise ValueError("empty signing key")
    return f"{b64e(payload)}.{b64e(_mac(key, domain, payload))}"


def unseal(key: bytes, domain: bytes, text: str, *, max_chars: int) -> bytes:
    """The payload of a text `seal(key, domain, payload)` made; BadSignature for anything else."""
    if not isinstance(text, str) or len(text) > max_chars or text.count(".") != 1:
        raise BadSignature()
    payload_text, signature_text = text.split(".")
    payload, signature = b64d(payload_text), b64d(signature_text)
    if len(signature) != SIGNATURE_BYTES or not hmac.compare_digest(signature, _mac(key, domain, payload)):
        raise BadSignature()
    return payload


def _mac(key: bytes, domain: bytes, payload: bytes) -> bytes:
    return hmac.new(key, domain + payload, hashlib.sha256).digest()


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64d(text: str) -> bytes:
    """Strict base64url without padding: only the alphabet, and only the canonical encoding.

    The standard decoder skips characters outside the alphabet and ignores the unused low bits of the
    last character, so several texts decode to the same bytes; here a text has exactly one spelling,
    and any changed character is a refused text."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise BadSignature()
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise BadSignature() from None
    if b64e(data) != text:
        raise BadSignature()
    return data
