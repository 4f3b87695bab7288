"""Settlement holds (docs/risk.md "Review and holds"): admins and finance hold and release a party, and
release a REVIEW redemption; settlement's claim step filters its pages through `ClaimFilter`; a party's
held postings are shown as its statement's "held" section."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coupons.data.risk_holds import RiskHoldStore
from coupons.domain.errors import Conflict, NotFound
from coupons.domain.ids import new_id
from coupons.domain.risk import holds


class HoldNotFound(NotFound):
    code = "risk_hold_not_found"
    title = "No such hold"


class RedemptionNotFound(NotFound):
    code = "redemption_not_found"
    title = "No such redemption"


class NotUnderReview(Conflict):
    code = "not_under_review"
    title = "The redemption was not held for review"


def hold(store: RiskHoldStore, terms: holds.HoldTerms, *, by: str, at: int) -> dict[str, Any]:
    record = holds.hold_record(terms, by=by, at=at, hold_id_=new_id("hold"))
    store.put_hold(record, holds.hold_decision(record, action="HOLD", at=at, decision_id=new_id("rsk")))
    return record


def release(store: RiskHoldStore, hold_id: str, *, by: str, at: int) -> dict[str, Any]:
    """The hold, released (a hold released before is answered as it was: the first release stands)."""
    found = store.hold(hold_id)
    if found is None:
        raise HoldNotFound(field="hold_id")
    if found["status"] == "RELEASED":
        return found
    released = holds.release_record(found, by=by, at=at)
    decision = holds.hold_decision(released, action="RELEASE", at=at, decision_id=new_id("rsk"))
    if not store.release(released, decision):
        return store.hold(hold_id)  # another release got there first: its record is the one
    return released


def release_review(
    store: RiskHoldStore, redemption: Callable[[str], dict[str, Any] | None], redemption_id: str, *,
    by: str, at: int, reason: str,
) -> dict[str, Any]:  # fmt: skip
    """Releases a REVIEW redemption's postings for the next run (once: a second release answers the first)."""
    found = redemption(redemption_id)
    if found is None:
        raise RedemptionNotFound(field="redemption_id")
    if not found.get("review_hold"):
        raise NotUnderReview(field="redemption_id")
    release = {
        "review_hold": found["review_hold"], "redemption_id": redemption_id, "released_by": by,
        "released_at": at, "reason": reason,
    }  # fmt: skip
    decision = holds.review_release_decision(
        {**found, "redemption_id": redemption_id}, by=by, at=at, decision_id=new_id("rsk"), reason=reason
    )
    return store.release_review(release, decision) or release


class ClaimFilter:
    """What settlement's claim step may take of its pages: made once per claim shard (the party holds
    are read once, consistently, at the claim's time), then each page's review holds looked up (one
    batch read, only when a line carries one)."""

    def __init__(self, store: RiskHoldStore, at: int):
        self._store = store
        self._at = at
        self._holds = store.holds()
        self._released: set[str] = set()

    def __call__(self, page: list[dict[str, Any]]) -> holds.Taken:
        """The page's settleable lines, and its held ones (each with `held_because`, for the run's
        statements): they stay unclaimed and due, so the run after the release takes them."""
        pending = holds.reviews_in(page) - self._released
        if pending:
            self._released |= self._store.released_reviews(pending)
        return holds.claimable(page, holds=self._holds, released_reviews=self._released, at=self._at)


def held_view(
    store: RiskHoldStore, party: str, unsettled: list[dict[str, Any]], *, at: int
) -> dict[str, Any]:
    """A party's holds in force and what of its unsettled postings waits on a hold (its statement's
    "held" section): per currency the amount and the lines, each with why."""
    all_holds = store.holds()
    released = store.released_reviews(holds.reviews_in(unsettled))
    taken = holds.claimable(unsettled, holds=all_holds, released_reviews=released, at=at)
    return {
        "party": party,
        "holds": [h for h in all_holds if h["party"] == party],
        "held": holds.held_section(taken.held),
    }


__all__ = ["ClaimFilter", "HoldNotFound", "NotUnderReview", "RedemptionNotFound", "hold", "held_view", "release", "release_review"]
