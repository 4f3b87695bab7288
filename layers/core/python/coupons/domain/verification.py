"""How a holder proves at the till that the coupon is theirs, beyond the printed code: a dynamic code
(TOTP, RFC 6238) and a signed short-lived QR token. Pure functions over bytes and ints; the tenant key
comes from `coupons.data.secrets`, the clock from the caller (so tests control it).

Where the secrets live. Both methods rest on one per-tenant key kept in AWS Secrets Manager:

- The QR token is signed with it (HMAC-SHA256), so a token is verified without a database read.
- A coupon's TOTP secret is *derived* from it, HMAC-SHA256(tenant key, "totp:v1:" + code)[:20],
  not generated and stored. The table therefore never holds a TOTP secret, not even encrypted: a
  table export, a backup or a stream consumer leaks nothing that makes dynamic codes, and there is no
  per-coupon secret to encrypt, no KMS call on the redemption path and nothing to write at issuance.
  (The alternative, a random secret per coupon encrypted under a KMS or tenant key, would need an AES
  library we do not ship, or a KMS round trip per redemption.) The derivation is one-way: knowing one
  coupon's secret tells nothing of another's or of the tenant key.
- Every use of the key is domain-separated by a prefix ("totp:v1:", "qr:v1:"), so no output of one
  use is ever a valid output of the other: a QR payload equal to some coupon code still signs to
  something other than that coupon's TOTP secret.

The price of deriving: the tenant key cannot change without changing every coupon's TOTP secret (every
holder must fetch its otpauth URI again) and voiding the outstanding QR tokens (they live a minute).
So the key is rotated by a deliberate runbook, never on a schedule. "v1" in the prefixes versions the
derivation and token format, not the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from coupons.domain import signing
from coupons.domain.errors import DomainError, Kind
from coupons.domain.ids import random_token

# --- dynamic codes (TOTP) ------------------------------------------------------------------------

# What the holder's authenticator app is told (otpauth URI) and what the till must type: RFC 6238's
# defaults, which every authenticator app supports.
TOTP_DIGITS = 6
TOTP_STEP_SECONDS = 30
TOTP_WINDOW = 1  # ±1 step: a code typed just before its step ended, or with the phone's clock ~30 s off
TOTP_SECRET_BYTES = 20  # 160 bits: RFC 4226's recommended length for HMAC-SHA1

_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
_MIN_DIGITS, _MAX_DIGITS = 6, 10  # RFC 4226 §5.3: at least 6; a 31-bit value has at most 10 digits


def hotp(secret: bytes, counter: int, *, digits: int = TOTP_DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 HOTP: HMAC(secret, 8-byte big-endian counter), dynamic truncation, last `digits` digits.

    Dynamic truncation (§5.3): the low 4 bits of the MAC's last byte pick an offset; the 31 bits at
    that offset (top bit masked, so the value is the same signed or unsigned) are the number."""
    if digest not in _DIGESTS:
        raise ValueError(f"unsupported digest {digest!r}; one of {sorted(_DIGESTS)}")
    if not _MIN_DIGITS <= digits <= _MAX_DIGITS:
        raise ValueError(f"digits must be {_MIN_DIGITS}..{_MAX_DIGITS}, not {digits}")
    if not 0 <= counter < 2**64:
        raise ValueError(f"counter out of range: {counter}")
    mac = hmac.new(secret, counter.to_bytes(8, "big"), _DIGESTS[digest]).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFF_FFFF
    return str(value % 10**digits).zfill(digits)


def totp(
    secret: bytes,
    for_time: int,
    *,
    digits: int = TOTP_DIGITS,
    step: int = TOTP_STEP_SECONDS,
    digest: str = "sha1",
) -> str:
    """RFC 6238 TOTP: HOTP over the time step T = floor(for_time / step) (T0 = 0, Unix seconds)."""
    if step <= 0:
        raise ValueError(f"step must be positive, not {step}")
    if for_time < 0:
        raise ValueError(f"time before the epoch: {for_time}")
    return hotp(secret, for_time // step, digits=digits, digest=digest)


def match_totp(
    secret: bytes,
    code: str,
    now: int,
    *,
    window: int = TOTP_WINDOW,
    step: int = TOTP_STEP_SECONDS,
    digits: int = TOTP_DIGITS,
) -> int | None:
    """The time step (counter) within ±window of now whose code is `code`, else None.

    The caller records the step it returns (in the redemption's own transaction) and refuses a step at
    or below the last one used: that is what makes a code single-use (RFC 6238 §5.2). When two steps
    of the window give the same code (chance about 10^-6), the highest is returned, so recording it
    also covers the lower one.

    Every step of the window is computed and compared with `hmac.compare_digest`, whichever matches,
    so the time taken says nothing about which step (or how many digits) matched. A code that is not
    exactly `digits` ASCII digits matches nothing and is not compared at all."""
    if window < 0:
        raise ValueError(f"window must be >= 0, not {window}")
    if not (isinstance(code, str) and len(code) == digits and code.isascii() and code.isdigit()):
        return None
    current = now // step
    matched = None
    for counter in range(max(0, current - window), current + window + 1):
        if hmac.compare_digest(hotp(secret, counter, digits=digits).encode(), code.encode()):
            matched = counter
    return matched


def coupon_totp_secret(tenant_key: bytes, coupon_code: str) -> bytes:
    """A coupon's TOTP secret: HMAC-SHA256(tenant key, b"totp:v1:" + code)[:20] (why: module docstring).

    `coupon_code` must be the canonical code (`codes.normalize`), the one stored as the coupon's key:
    a code typed with dashes or lower case must give the same secret as the code issued."""
    if not tenant_key:
        raise ValueError("empty tenant key")
    if not coupon_code:
        raise ValueError("empty coupon code")
    mac = hmac.new(tenant_key, b"totp:v1:" + coupon_code.encode(), hashlib.sha256).digest()
    return mac[:TOTP_SECRET_BYTES]


def otpauth_uri(secret: bytes, *, account: str, issuer: str) -> str:
    """The Key URI authenticator apps import (usually as a QR code), given to the holder once:

    otpauth://totp/{issuer}:{account}?secret=BASE32&issuer=...&algorithm=SHA1&digits=6&period=30

    The secret is RFC 4648 base32 without padding, as the format asks. Label parts and parameters are
    percent-encoded (a space is %20, not +). Neither part may contain ':', the label's separator: apps
    split on it, and an issuer or account with one would be shown wrongly."""
    if not secret:
        raise ValueError("empty secret")
    for name, value in (("account", account), ("issuer", issuer)):
        if not value or ":" in value:
            raise ValueError(f"{name} must be non-empty and contain no ':' (the label separator): {value!r}")
    label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
    query = urlencode(
        {
            "secret": base64.b32encode(secret).decode("ascii").rstrip("="),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": TOTP_DIGITS,
            "period": TOTP_STEP_SECONDS,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


# --- QR tokens -----------------------------------------------------------------------------------

QR_TOKEN_SECONDS = 60  # default lifetime: long enough to show at a till, too short to pass around
QR_TOKEN_VERSION = 1
MAX_QR_TOKEN_CHARS = 1024  # larger is refused unread; signing refuses to make one this large
_QR_DOMAIN = b"qr:v1:"
_QR_FIELDS = frozenset({"code", "user_id", "expires_at", "nonce", "v"})


class VerificationFailed(DomainError):
    """Any refused dynamic code or QR token. One class, one code and a title that names no part:
    telling "expired" from "bad signature" from "unknown step" would help whoever is guessing.
    A 422, not a 401: 401 is about the API key alone, and a client may drop a good key on a 401."""

    kind = Kind.UNPROCESSABLE
    code = "verification_failed"
    title = "The coupon could not be verified"

    def __init__(self) -> None:
        # No detail, field or extra on purpose: the problem document must not say what was wrong.
        super().__init__()


@dataclass(frozen=True)
class QrClaims:
    code: str
    user_id: str
    expires_at: int  # Unix seconds; the token is refused from this second on
    nonce: str  # what makes the token single-use: the redemption records it


def new_nonce() -> str:
    """16 Crockford base32 characters (80 bits) from the CSPRNG."""
    return random_token(16)


def sign_qr_token(key: bytes, *, code: str, user_id: str, expires_at: int, nonce: str) -> str:
    """base64url(payload) + "." + base64url(HMAC-SHA256(key, b"qr:v1:" + payload)) (`coupons.domain.signing`).

    The payload is compact JSON with sorted keys: {"code", "expires_at", "nonce", "user_id", "v": 1}.
    The MAC is over the payload's bytes, not its base64 text. Bad arguments are a programming error
    (ValueError), never a token this module would later refuse."""
    for name, value in (("code", code), ("user_id", user_id), ("nonce", nonce)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    if not isinstance(expires_at, int) or isinstance(expires_at, bool) or expires_at < 0:
        raise ValueError(f"expires_at must be Unix seconds (int), not {expires_at!r}")
    payload = json.dumps(
        {"code": code, "user_id": user_id, "expires_at": expires_at, "nonce": nonce, "v": QR_TOKEN_VERSION},
        separators=(",", ":"),
        sort_keys=True,
        ensure_ascii=False,
    ).encode("utf-8")
    token = signing.seal(key, _QR_DOMAIN, payload)
    if len(token) > MAX_QR_TOKEN_CHARS:
        raise ValueError(
            f"a token for these values would be {len(token)} characters, over {MAX_QR_TOKEN_CHARS}"
        )
    return token


def verify_qr_token(key: bytes, token: str, *, now: int) -> QrClaims:
    """The claims of a token this key signed that has not expired (expires_at > now); otherwise
    VerificationFailed, whatever the reason (oversize, malformed, signature, version, expiry).

    The signature is checked (constant time) before the payload is parsed: nothing an attacker wrote
    is interpreted until it is known to be ours. Single use is the caller's part: record the nonce."""
    try:
        payload = signing.unseal(key, _QR_DOMAIN, token, max_chars=MAX_QR_TOKEN_CHARS)
    except signing.BadSignature:
        raise VerificationFailed() from None
    try:
        claims = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise VerificationFailed() from None
    if not isinstance(claims, dict) or claims.keys() != _QR_FIELDS:
        raise VerificationFailed()
    version, expires_at = claims["v"], claims["expires_at"]
    if type(version) is not int or version != QR_TOKEN_VERSION:
        raise VerificationFailed()
    if type(expires_at) is not int or expires_at <= now:
        raise VerificationFailed()
    strings = (claims["code"], claims["user_id"], claims["nonce"])
    if not all(isinstance(value, str) and value for value in strings):
        raise VerificationFailed()
    return QrClaims(
        code=claims["code"], user_id=claims["user_id"], expires_at=expires_at, nonce=claims["nonce"]
    )
