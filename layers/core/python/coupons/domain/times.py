"""The one text form of a moment: `YYYY-MM-DDTHH:MM:SS.ffffffZ`, always UTC, always with microseconds.

Fixed width, so comparing two such strings compares the moments: DynamoDB conditions
(`valid_from <= :now AND valid_until > :now`), filters and sort keys (`{issued_at}#{code}`,
`REVERSAL#{reversed_at}#…`) compare times as strings. Every time the service writes or answers is
made by `iso`; a time a client sends is read by `parse` (or pydantic) and stored through `iso`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, PlainSerializer


def iso(moment: datetime) -> str:
    """`moment` (aware) in the fixed form (isoformat pads the year to 4 digits; strftime may not)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse(text: str) -> datetime:
    """An aware datetime from ISO 8601 text: the fixed form, or another (no fraction, an offset) that a
    client sent or an item stored before the fixed form holds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def normalize(text: str) -> str:
    """ISO 8601 text (aware) in the fixed form."""
    return iso(parse(text))


# A datetime field of a request model: any ISO 8601 with an offset in, the fixed form out
# (`model_dump(mode="json")`), so what is stored compares as strings with what the service writes.
UtcTime = Annotated[AwareDatetime, PlainSerializer(iso, return_type=str, when_used="json")]
