"""A calendar date as the API takes it (YYYY-MM-DD, a day that exists), for queries and bodies alike."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, Field, StrictStr

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def calendar_day(text: str) -> str:
    """`text` if it is a day of the calendar written YYYY-MM-DD; ValueError otherwise."""
    # The pattern first: date.fromisoformat also reads other ISO 8601 forms ("2026-W10-1", "20260301").
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise ValueError("must be a date, YYYY-MM-DD")
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        # 2026-02-30 or 0000-00-00 is no day: read as "no postings", it would look like a zero balance.
        raise ValueError(f"{text} is not a day of the calendar") from None


IsoDate = Annotated[
    StrictStr,
    Field(min_length=10, max_length=10, json_schema_extra={"format": "date"}, examples=["2026-03-01"]),
    AfterValidator(calendar_day),
]
