"""Identifiers: time-ordered, unguessable ids for records the server creates."""

from __future__ import annotations

import secrets
import time

# Crockford base32: no I, L, O, U, so ids read back without ambiguity.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        out.append(CROCKFORD[digit])
    return "".join(reversed(out))


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 random chars (80 bits), ULID-like: sorts by time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{prefix}_{_b32(ms, 10)}{_b32(secrets.randbits(80), 16)}"


def random_token(n_chars: int) -> str:
    """`n_chars` Crockford base32 characters from the CSPRNG (5 bits each)."""
    return _b32(secrets.randbits(5 * n_chars), n_chars)
