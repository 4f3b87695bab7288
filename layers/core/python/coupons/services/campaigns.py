"""Creating, reading and listing campaigns, with each principal's view of them."""

from __future__ import annotations

from typing import Any

from coupons.data.campaigns import CampaignStore
from coupons.domain import campaigns
from coupons.domain.campaigns import CampaignTerms
from coupons.domain.errors import CampaignNotFound
from coupons.domain.principals import Principal, Role


def create(store: CampaignStore, terms: CampaignTerms, principal: Principal) -> dict[str, Any]:
    record = campaigns.new_campaign(terms, principal)
    store.put_new(record)
    return record


def get(store: CampaignStore, campaign_id: str, principal: Principal) -> dict[str, Any]:
    record = store.get(campaign_id)
    # Someone else's campaign is "not found", not "forbidden": ids must not leak across brands.
    if record is None or not campaigns.can_read(record, principal):
        raise CampaignNotFound(field="campaign_id")
    return record


def list_for(
    store: CampaignStore, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    principal.require(Role.ADMIN, Role.ISSUER)
    return store.list(brand_id=principal.brand_id, limit=limit, cursor=cursor)
