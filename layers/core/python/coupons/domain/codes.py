"""Coupon codes: [printed prefix][campaign tag][80 random bits][check character], Crockford base32.

The campaign tag (4 characters, unique per tenant) says which campaign a code belongs to without a
database read, the way a card number's first digits name its issuer: redemption needs the campaign's
(immutable, cached) terms before it writes, and must not read the coupon first.

The check character is the Damm algorithm over the quasigroup x∘y = 2·x + y of GF(32) (modulus
x^5 + x^2 + 1). That operation is totally anti-symmetric, so every single mistyped character and
every swap of two adjacent characters is caught — by arithmetic, before any database read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from coupons.domain.errors import DomainError, InvalidField
from coupons.domain.ids import CROCKFORD

RANDOM_CHARS = 16  # 16 × 5 = 80 bits from the CSPRNG
TAG_CHARS = 4  # 2^20 campaigns per tenant
_TAIL = TAG_CHARS + RANDOM_CHARS + 1
PREFIX_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{1,6}$"
_VALUE = {c: i for i, c in enumerate(CROCKFORD)}
# Crockford decoding: case-insensitive, and the letters people type for digits read as those digits.
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s-]")
MAX_INPUT = 64


class CodeChecksumInvalid(DomainError):
    code = "code_checksum_invalid"
    title = "This is not a valid coupon code (mistyped?)"


def _double(v: int) -> int:
    v <<= 1
    return v ^ 0b100101 if v & 0b100000 else v  # reduce by x^5 + x^2 + 1


def _damm(values: list[int]) -> int:
    interim = 0
    for v in values:
        interim = _double(interim) ^ v
    return interim


def check_char(body: str) -> str:
    # The check c makes interim∘c = 0, i.e. c = 2·interim in characteristic 2.
    return CROCKFORD[_double(_damm([_VALUE[c] for c in body]))]


def random_chars(n: int) -> str:
    return "".join(secrets.choice(CROCKFORD) for _ in range(n))


def new_tag() -> str:
    return random_chars(TAG_CHARS)


def new_code(tag: str, prefix: str = "") -> str:
    """A new code in its canonical form (no hyphens): prefix + tag + 16 random chars + check char."""
    body = prefix + tag + random_chars(RANDOM_CHARS)
    return body + check_char(body)


def derived_code(secret: bytes, material: str, tag: str, prefix: str = "") -> str:
    """The code `new_code` would make, with its 80 bits taken from HMAC-SHA256(secret, material)
    instead of the CSPRNG: the same material always gives the same code (a retried request lands on
    its first coupon), and without the secret it is as unguessable as a random one."""
    digest = int.from_bytes(hmac.new(secret, material.encode(), hashlib.sha256).digest()[:10], "big")
    chars = "".join(CROCKFORD[(digest >> (5 * i)) & 31] for i in reversed(range(RANDOM_CHARS)))
    body = prefix + tag + chars
    return body + check_char(body)


def tag_of(code: str) -> str:
    """The campaign tag of a normalized code."""
    return code[-_TAIL : -_TAIL + TAG_CHARS]


def prefix_of(code: str) -> str:
    return code[:-_TAIL]


def normalize(text: str, *, field: str = "code") -> str:
    """The canonical form of a code as typed: hyphens and spaces dropped, case and O/I/L folded.
    Raises CodeChecksumInvalid for anything that is not a code this service could have issued."""
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        raise InvalidField(f"{field} must be a string of at most {MAX_INPUT} characters", field=field)
    code = _SEPARATORS.sub("", text).upper().translate(_ALIASES)
    if len(code) < _TAIL or any(c not in _VALUE for c in code):
        raise CodeChecksumInvalid(field=field)
    if _damm([_VALUE[c] for c in code]) != 0:
        raise CodeChecksumInvalid(field=field)
    return code


def display(code: str) -> str:
    """For print: groups of four (`ABCD-EFGH-…`); any grouping is accepted back."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
