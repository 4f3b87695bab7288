"""Campaigns, their code tags and their quota shards (coupons.data.campaigns)."""

from __future__ import annotations

from coupons.data.models.base import Integer, List, MainModel, Text


def campaign_pk(campaign_id: str) -> str:
    return f"CAMPAIGN#{campaign_id}"


def tag_pk(tag: str) -> str:
    return f"CAMPAIGNTAG#{tag}"


def shard_pk(campaign_id: str, shard: int | str) -> str:
    return f"QUOTA#{campaign_id}#{shard}"


CAMPAIGN_SK, TAG_SK, SHARD_SK = "CAMPAIGN", "TAG", "QUOTA"


class Campaign(MainModel):
    """A campaign's terms (coupons.domain.campaigns.CampaignTerms) and what the platform adds: listed
    newest first on gsi1 (all) and gsi2 (its brand's)."""

    campaign_id = Text()
    code_tag = Text()
    brand_id = Text()
    name = Text()
    description = Text(null=True)
    type = Text()
    currency = Text()
    amount = Integer(null=True)
    percent_bps = Integer(null=True)
    max_discount = Integer(null=True)
    min_order = Integer(null=True)
    valid_from = Text(null=True)
    valid_until = Text(null=True)
    valid_days = Integer(null=True)
    issuance_starts_at = Text(null=True)
    issuance_ends_at = Text(null=True)
    total_quantity = Integer()
    budget = Integer(null=True)
    per_user_limit = Integer()
    eligible_merchants = List(of=Text, null=True)
    eligible_users = List(of=Text, null=True)
    eligible_segments = List(of=Text, null=True)
    funding_rule_id = Text(null=True)
    shards = Integer()
    code_prefix = Text(null=True)
    settlement_cycle = Text()
    verification_methods = List(of=Text)
    hold_seconds = Integer(null=True)  # a redemption hold's life for its coupons (None: the tenant's)
    status = Text()
    status_changed_at = Text(null=True)
    face_value = Integer()
    capacity = Integer()
    created_at = Text()
    created_by = Text()


class CampaignTag(MainModel):
    """A code tag taken by a campaign: unique per tenant (the campaign's codes carry it)."""

    campaign_id = Text()


class QuotaShard(MainModel):
    """One shard of a campaign's remaining quantity, with the campaign's status copied on it."""

    capacity = Integer()
    remaining = Integer()
    status = Text()
