"""The issue's four examples (#18 point 3) as rules: the ones docs/risk.md shows, shared by the tests
and the backtest (bench/risk_backtest.py)."""

from __future__ import annotations

from coupons.domain.risk.rules import RuleSet

FARMING = {  # one device redeeming coupons of more than 3 users in an hour (套券)
    "rule_id": "farm-device",
    "condition": {
        "type": "velocity",
        "per": "device",
        "measure": "distinct",
        "of": "user",
        "window": {"unit": "hour"},
        "threshold": 3,
    },
    "action": "DENY",
    "reason": "coupon farming: one device redeeming for many users",
}
STORE_HOPPING = {  # one user redeeming at more than 5 stores in 10 minutes
    "rule_id": "store-hopping",
    "condition": {
        "type": "velocity",
        "per": "user",
        "measure": "distinct",
        "of": "store",
        "window": {"unit": "minute", "size": 10},
        "threshold": 5,
    },
    "action": "REVIEW",
    "reason": "one user at many stores within minutes",
}
BRUSHING = {  # a merchant redeeming more than N a minute (刷单)
    "rule_id": "merchant-burst",
    "condition": {
        "type": "velocity",
        "per": "merchant",
        "measure": "count",
        "window": {"unit": "minute"},
        "threshold": 20,
    },
    "action": "REVIEW",
    "reason": "a merchant redeeming faster than its tills can",
}
ISSUANCE_FARMING = {  # one device claiming coupons for many users (issuance)
    "rule_id": "claim-farm",
    "applies_to": "ISSUANCE",
    "condition": {
        "type": "velocity",
        "per": "device",
        "measure": "distinct",
        "of": "user",
        "window": {"unit": "day"},
        "threshold": 5,
    },
    "action": "DENY",
    "reason": "one device claiming coupons for many users",
}
BLOCKED_DEVICE = {
    "rule_id": "blocked-device",
    "condition": {"type": "list", "list": "block-device"},
    "action": "DENY",
    "reason": "device on the block list",
}
ALLOWED_USER = {
    "rule_id": "trusted-user",
    "condition": {"type": "list", "list": "allow-user"},
    "action": "ALLOW",
    "reason": "user on the allow list",
}

EXAMPLES = [FARMING, STORE_HOPPING, BRUSHING, ISSUANCE_FARMING]


def rule_set(*rules: dict, version: int = 1) -> RuleSet:
    return RuleSet.model_validate({"version": version, "rules": list(rules)})
