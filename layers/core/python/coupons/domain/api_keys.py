"""API keys: generated from the CSPRNG, shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from coupons.domain.ids import random_token

# ck_<key id: 16 chars, stored in clear to find the record>_<secret: 32 chars = 160 bits>
_KEY = re.compile(r"^ck_([0-9A-HJKMNP-TV-Z]{16})_([0-9A-HJKMNP-TV-Z]{32})$")  # Crockford base32


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key_id: str
    plain: str  # shown to the caller once, never stored
    secret_hash: str


def generate() -> NewApiKey:
    key_id, secret = random_token(16), random_token(32)
    plain = f"ck_{key_id}_{secret}"
    return NewApiKey(key_id=key_id, plain=plain, secret_hash=hash_key(plain))


def hash_key(plain: str) -> str:
    # A 160-bit random secret cannot be brute-forced, so a fast hash is enough (no salt or KDF needed).
    return hashlib.sha256(plain.encode()).hexdigest()


def key_id_of(plain: str) -> str | None:
    """The key id a well-formed key carries, or None: a malformed key costs no database read."""
    match = _KEY.match(plain)
    return match.group(1) if match else None


def matches(plain: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_key(plain), secret_hash)
