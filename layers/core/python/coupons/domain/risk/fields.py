"""The request fields risk rules read (issuance and redemption take them alike): the end user's device
and IP address, as the till or app passes them."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictStr

from coupons.domain.risk import keys

DeviceId = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
ClientIp = Annotated[StrictStr, Field(min_length=2, max_length=64)]


def normalized_ip(value: str | None) -> str | None:
    """A pydantic field validator: one spelling per address (keys.normalize_ip), else a 400 on the field."""
    if value is None:
        return None
    try:
        return keys.normalize_ip(value)
    except Exception:
        raise ValueError("not an IPv4 or IPv6 address") from None
