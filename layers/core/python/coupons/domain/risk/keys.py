"""The key strings of risk items, written once: list entries, windowed counters, code-guessing counters.

Every risk item has a partition of its own subject (`RISKLIST#block-device#d-1`, `RISKCTR#user#u-1`), so
no list and no counter family shares one hot partition. Values are percent-escaped so a user id with a
`#` cannot forge another item's key. Windows are fixed and aligned on the epoch (UTC): bucket
b = floor(t / W) covers [b·W, (b+1)·W).
"""

from __future__ import annotations

import hashlib
import ipaddress
from urllib.parse import quote

from coupons.domain.errors import InvalidField

# A counter outlives its window by this much before TTL may delete it: TTL never deletes early, but a
# function whose clock lags (Lambda clocks are NTP-synced, within well under a second) may still write
# the previous bucket just after it closed; deleting that item then would restart its count at 0.
TTL_MARGIN_SECONDS = 3600


def part(value: str) -> str:
    """A key component: printable, no `#` (the separator) or `%` unescaped."""
    return quote(value, safe="-_.:@/+=")


def normalize_ip(text: str, *, field: str = "client_ip") -> str:
    """One spelling per address (`::FFFF:10.0.0.1` and `::ffff:a00:1` are one entry): the compressed
    form; an IPv4-mapped IPv6 address is its IPv4 address."""
    try:
        address = ipaddress.ip_address(text.strip())
    except (AttributeError, ValueError):
        raise InvalidField("not an IPv4 or IPv6 address", field=field) from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.compressed


def bucket(at: int, window_seconds: int) -> int:
    return at // window_seconds


def window_end(at: int, window_seconds: int) -> int:
    """The first second after the window that `at` falls in."""
    return (bucket(at, window_seconds) + 1) * window_seconds


def retry_after(at: int, window_seconds: int) -> int:
    """Seconds until the current window ends (at least 1): what a 429's Retry-After says."""
    return max(1, window_end(at, window_seconds) - at)


def entry_key(list_name: str, value: str) -> tuple[str, str]:
    """(pk, sk) of one list entry. The lists API writes it; the redemption checks it."""
    return f"RISKLIST#{list_name}#{part(value)}", "ENTRY"


def counter_key(subject: str, value: str, window_seconds: int, at: int) -> tuple[str, str]:
    """(pk, sk) of the counter of one subject value in the window of `at`. Rules with the same subject
    and window size share it (one item, one transaction action)."""
    return f"RISKCTR#{subject}#{part(value)}", f"W{window_seconds}#{bucket(at, window_seconds)}"


def counter_ttl(at: int, window_seconds: int) -> int:
    return window_end(at, window_seconds) + TTL_MARGIN_SECONDS


def member(value: str) -> str:
    """What a distinct-values set holds for a value: a 64-bit digest (16 hex characters). Bounds the
    item's size and keeps user ids and addresses out of the counters; a collision (≈ n²/2⁶⁵) could
    only under-count by one."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def guess_key(scope: str, value: str, window_seconds: int, at: int) -> tuple[str, str]:
    """(pk, sk) of a code-guessing counter: misses of one API key / end-user IP / device in a window."""
    return f"RISKGUESS#{scope}#{part(value)}", f"W{window_seconds}#{bucket(at, window_seconds)}"
