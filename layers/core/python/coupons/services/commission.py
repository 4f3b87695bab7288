"""The platform's commission schedule (平台抽成): admin only, versioned, never retroactive. Clearing
applies the version in force at each redemption's time (coupons.services.clearing)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coupons.data.commission import CommissionStore
from coupons.data.idempotency import Completion, put_of
from coupons.domain import commission
from coupons.domain.coupons import iso
from coupons.domain.errors import Conflict
from coupons.domain.principals import Principal, Role


class CommissionVersionRace(Conflict):
    code = "commission_version_conflict"
    title = "Another version of the commission schedule was added at the same moment; retry"


def add_version(
    store: CommissionStore,
    terms: commission.ScheduleVersionTerms,
    principal: Principal,
    *,
    now: datetime | None = None,
    completion: Completion | None = None,
) -> dict[str, Any]:
    principal.require(Role.ADMIN)
    now = now or datetime.now(UTC)
    starts = commission.check_version(terms, now=now)
    versions = store.versions()
    body = terms.model_dump(mode="json", exclude_none=True, exclude={"effective_from"})
    version = {
        **body,
        "version": max((v["version"] for v in versions), default=0) + 1,
        "effective_from": iso(starts),
        "created_at": iso(now),
        "created_by": str(principal),
    }
    answer = {"versions": [*versions, version]}
    if not store.put_version(version, completion=put_of(completion, answer)):
        raise CommissionVersionRace()
    return answer


def schedule(store: CommissionStore, principal: Principal) -> dict[str, Any]:
    principal.require(Role.ADMIN)
    return {"versions": store.versions()}
