"""Funding rules and their versions (coupons.data.ledger): one partition per rule.

  FUNDINGRULE#{rule_id} / RULE           FundingRule (the header)
  FUNDINGRULE#{rule_id} / VERSION#{n:06d} FundingRuleVersion (never changed, but for its approval)

One Query reads the header and every version: the items carry no kind, so each is decoded by its sort
key (`decoded`).
"""

from __future__ import annotations

from typing import Any

from coupons.data.models.base import Integer, List, MainModel, Map, Text
from coupons.data.models.ledger import PartyAmounts

RULE_SK, VERSION_PREFIX = "RULE", "VERSION#"


def rule_pk(rule_id: str) -> str:
    return f"FUNDINGRULE#{rule_id}"


def version_sk(number: int) -> str:
    return f"{VERSION_PREFIX}{number:06d}"


class FundingRule(MainModel):
    """Who may use the rule: a brand's (brand_id) or a platform rule naming its brands (brand_ids)."""

    rule_id = Text()
    name = Text()
    brand_id = Text(null=True)
    brand_ids = List(of=Text, null=True)
    # Always set by coupons.services.funding; rules seeded by fixtures and benches go without.
    created_at = Text(null=True)
    created_by = Text(null=True)


class Window(Map):
    starts_at = Text()
    ends_at = Text()
    shares = PartyAmounts()


class FundingRuleVersion(MainModel):
    """One version's shares (basis points), PROPOSED until approved where its maker may not commit others;
    approval keeps the effective_from first proposed in `proposed_from`."""

    version = Integer()
    shares = PartyAmounts()
    merchant_overrides = Map(null=True)  # merchant id -> shares (PLATFORM / BRAND / MERCHANT bps)
    windows = List(of=Window, null=True)
    effective_from = Text()
    status = Text(null=True)  # absent on versions written before approvals existed
    # Always set by coupons.services.funding; rules seeded by fixtures and benches go without.
    created_at = Text(null=True)
    created_by = Text(null=True)
    approved_at = Text(null=True)
    approved_by = Text(null=True)
    proposed_from = Text(null=True)


def decoded(rule: type[FundingRule], version: type[FundingRuleVersion], raw: dict[str, Any]) -> Any:
    """An item of a rule's partition, as the model its sort key names."""
    return (rule if MainModel.from_raw_data(raw).sk == RULE_SK else version).from_raw_data(raw)
