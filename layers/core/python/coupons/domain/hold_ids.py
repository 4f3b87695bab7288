"""Sealed redemption-hold ids: what a capture or void needs of its hold, carried in the hold's id, so that
the end of a hold can be one TransactWriteItems with no read first (docs/redemption.md "Toward one
request"; issue #15 point 2).

`hld_` + base64url(nonce ‖ AES-256-GCM(k, nonce, facts, aad = "hold-id:v1")), k = HMAC-SHA256(tenant key,
"hold-id:v1"). The facts (the coupon's code, its type (a gift card or which single-use kind), the currency, the amount held,
hold_expires_at) cannot be read from the id (ids appear in URLs, journals and statements) nor changed
(GCM's tag: a changed id reads as no sealed hold). The nonce is 6 bytes of milliseconds and 6 random:
unique per key however many holds a tenant places. hold_expires_at is sealed as its distance from the
nonce's moment (a hold lasts at most 7 days: 6 bytes), so a 14-character code makes a 76-character id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from coupons.domain.signing import BadSignature, b64d, b64e

PREFIX = "hld_"
_DOMAIN = b"hold-id:v1"
_VERSION = 0x10  # the high nibble of the first byte; its low nibble: the coupon type (_TYPES)
_NONCE, _TAG = 12, 16
_MAX_CODE_BYTES = 4 * 64  # a code is at most 64 characters
# version and flags, currency, hold_expires_at − the nonce's moment (µs, zigzag varint), held (varint), code
_MAX_PLAIN = 1 + 3 + 10 + 10 + _MAX_CODE_BYTES
MAX_CHARS = len(PREFIX) + -(-(_NONCE + _MAX_PLAIN + _TAG) * 4 // 3)
_GIFT = 0x01
# The low nibble: bit 0 a gift card; bits 1-3 a single-use coupon's type (0: not said).
_TYPES = ("FIXED", "PERCENT", "THRESHOLD")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class HoldFacts:
    """What a hold's capture or void writes and answers without reading the hold."""

    code: str
    gift_card: bool
    currency: str  # ISO 4217, 3 letters
    held_amount: int  # minor units
    hold_expires_at: str  # ISO UTC with microseconds, as coupons.domain.times.iso writes it
    # The campaign type (GIFT_CARD for a gift card; FIXED / PERCENT / THRESHOLD, or None: not said).
    coupon_type: str | None = None

    def __post_init__(self):
        if self.gift_card:
            object.__setattr__(self, "coupon_type", "GIFT_CARD")
        elif self.coupon_type not in (None, *_TYPES):
            raise ValueError(f"not a single-use coupon type: {self.coupon_type}")


def mint(tenant_key: bytes, facts: HoldFacts, *, now_ms: int | None = None) -> str:
    """A new hold's id sealing `facts` under the tenant key."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    ms %= 1 << 48
    nonce = ms.to_bytes(6, "big") + secrets.token_bytes(6)
    return PREFIX + b64e(nonce + _aead(tenant_key).encrypt(nonce, _pack(facts, ms), _DOMAIN))


def read(tenant_key: bytes, redemption_id: str) -> HoldFacts | None:
    """The facts a sealed hold id carries; None for anything else (an `rdm_` id, junk, an id changed in
    any character, one sealed under another key): such an id takes the read path."""
    if not isinstance(redemption_id, str) or not redemption_id.startswith(PREFIX):
        return None
    if len(redemption_id) > MAX_CHARS:
        return None
    try:
        sealed = b64d(redemption_id[len(PREFIX) :])
    except BadSignature:
        return None
    if len(sealed) < _NONCE + _TAG + 1:
        return None
    try:
        plain = _aead(tenant_key).decrypt(sealed[:_NONCE], sealed[_NONCE:], _DOMAIN)
    except InvalidTag:
        return None
    return _unpack(plain, int.from_bytes(sealed[:6], "big"))


@lru_cache(maxsize=8)
def _aead(tenant_key: bytes) -> AESGCM:
    if not tenant_key:
        raise ValueError("empty tenant key")
    # Its own key for this use: nothing else signed or sealed with the tenant key opens a hold id.
    return AESGCM(hmac.new(tenant_key, _DOMAIN, hashlib.sha256).digest())


def _pack(facts: HoldFacts, ms: int) -> bytes:
    currency = facts.currency.encode("ascii")
    code = facts.code.encode("utf-8")
    if len(currency) != 3 or not code or len(code) > _MAX_CODE_BYTES or facts.held_amount < 0:
        raise ValueError("not a hold's facts")
    flags = (
        _GIFT if facts.gift_card else (_TYPES.index(facts.coupon_type) + 1 if facts.coupon_type else 0) << 1
    )
    delta = _micros(facts.hold_expires_at) - ms * 1000
    zigzag = delta * 2 if delta >= 0 else -delta * 2 - 1
    return bytes([_VERSION | flags]) + currency + _uvarint(zigzag) + _uvarint(facts.held_amount) + code


def _unpack(plain: bytes, ms: int) -> HoldFacts | None:
    # Authenticated, so ours: a plaintext this version cannot read (a newer one's) is read as no facts.
    if len(plain) < 7 or plain[0] & 0xF0 != _VERSION:
        return None
    zigzag, at = _read_uvarint(plain, 4)
    held, at = _read_uvarint(plain, at) if zigzag is not None else (None, at)
    if held is None or at >= len(plain):
        return None
    delta = zigzag // 2 if zigzag % 2 == 0 else -(zigzag + 1) // 2
    kind = (plain[0] >> 1) & 0x07
    if kind > len(_TYPES):
        return None
    return HoldFacts(
        code=plain[at:].decode("utf-8"),
        gift_card=bool(plain[0] & _GIFT),
        currency=plain[1:4].decode("ascii"),
        held_amount=held,
        hold_expires_at=_iso(ms * 1000 + delta),
        coupon_type=_TYPES[kind - 1] if kind and not plain[0] & _GIFT else None,
    )


def _micros(text: str) -> int:
    moment = datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _iso(micros: int) -> str:
    seconds, us = divmod(micros, 1_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=us)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_uvarint(data: bytes, at: int) -> tuple[int | None, int]:
    value = shift = 0
    while at < len(data) and shift < 70:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
    return None, at
