"""The platform's commission schedule (coupons.data.commission): one partition, a version per item.

  COMMISSION#SCHEDULE / VERSION#{n:06d}   CommissionVersion (never changed once written)
"""

from __future__ import annotations

from coupons.data.models.base import Integer, List, MainModel, Map, Text

SCHEDULE_PK, VERSION_PREFIX = "COMMISSION#SCHEDULE", "VERSION#"


def version_sk(number: int) -> str:
    return f"{VERSION_PREFIX}{number:06d}"


class CommissionVersion(MainModel):
    """One version (coupons.domain.commission.ScheduleVersionTerms): a default and rules by merchant
    and/or campaign, in force from `effective_from` (never in the past when it was written)."""

    version = Integer()
    default = Map(null=True)  # CommissionTerms as dumped; absent: no commission where no rule matches
    rules = List(of=Map, null=True)  # [{merchant_id?, campaign_id?, terms}]
    effective_from = Text()
    created_at = Text()
    created_by = Text()
