"""Creating, reading, listing campaigns and moving them through their lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from coupons.data.campaigns import CampaignStore, TagTaken
from coupons.data.idempotency import Completion, put_of
from coupons.domain import campaigns, codes
from coupons.domain.campaigns import TRANSITIONS, CampaignTerms, InvalidTransition
from coupons.domain.errors import CampaignNotFound
from coupons.domain.principals import Principal, Role
from coupons.domain.times import iso

# 2^20 tags per tenant: a clash is rare until a tenant has tens of thousands of campaigns.
TAG_TRIES = 8


def create(
    store: CampaignStore,
    terms: CampaignTerms,
    principal: Principal,
    *,
    check_rule: Callable[[str, str], None] | None = None,
    completion: Completion | None = None,
) -> dict[str, Any]:
    """`check_rule(rule_id, brand_id)` refuses a funding rule the campaign may not use. The campaign
    and the Idempotency-Key's completion (if any) are one transaction."""
    record = campaigns.new_campaign(terms, principal)
    if terms.funding_rule_id is not None and check_rule is not None:
        check_rule(terms.funding_rule_id, record["brand_id"])

    def put() -> dict[str, Any]:
        answer = with_counters(store, record, issued=0)  # known before the write: it rides with it
        store.put_new(record, campaigns.shard_capacities(record), completion=put_of(completion, answer))
        return answer

    for _ in range(TAG_TRIES - 1):
        try:
            return put()
        except TagTaken:
            record["code_tag"] = codes.new_tag()
    return put()


def get(store: CampaignStore, campaign_id: str, principal: Principal) -> dict[str, Any]:
    record = readable(store, campaign_id, principal)
    if principal.role is Role.MERCHANT:
        # A till's view: no counters read, nothing about other parties.
        return campaigns.merchant_view(record)
    return with_counters(store, record)


def readable(store: CampaignStore, campaign_id: str, principal: Principal) -> dict[str, Any]:
    record = store.get(campaign_id)
    # Someone else's campaign is "not found", not "forbidden": ids must not leak across brands.
    if record is None or not campaigns.can_read(record, principal):
        raise CampaignNotFound(field="campaign_id")
    return record


def with_counters(
    store: CampaignStore, record: dict[str, Any], *, issued: int | None = None
) -> dict[str, Any]:
    """The campaign with its live counters, summed over its quota shards (one batch read)."""
    if issued is None:
        issued = sum(store.issued_counts(record["campaign_id"], record["shards"]))
    return {**record, "issued_count": issued, "budget_used": issued * record["face_value"]}


def list_for(
    store: CampaignStore, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, without live counters (GET one campaign for those)."""
    principal.require(Role.ADMIN, Role.ISSUER)
    return store.list(brand_id=principal.brand_id, limit=limit, cursor=cursor)


def transition(
    store: CampaignStore,
    campaign_id: str,
    action: str,
    principal: Principal,
    *,
    completion: Completion | None = None,
) -> dict[str, Any]:
    """activate / pause / end, by an admin or the campaign's issuer. The move and the
    Idempotency-Key's completion (if any) are one transaction: a replay gets the first answer."""
    principal.require(Role.ADMIN, Role.ISSUER)
    record = readable(store, campaign_id, principal)
    allowed_from, to = TRANSITIONS[action]
    at = iso(datetime.now(UTC))
    # Known before the write, so that it rides with it (the counters as read just before the move).
    answer = with_counters(store, {**record, "status": to.value, "status_changed_at": at})
    if not store.set_status(
        campaign_id,
        record["shards"],
        allowed_from={s.value for s in allowed_from},
        to=to,
        at=at,
        completion=put_of(completion, answer),
    ):
        current = store.get(campaign_id)["status"]
        raise InvalidTransition(f"cannot {action} a campaign that is {current}", status_now=current)
    return answer
