"""Funding rules: created by an admin (platform-wide or for a brand) or an issuer (its brand),
versioned, never changed in place, never retroactive."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coupons.data.idempotency import Completion, put_of
from coupons.data.ledger import LedgerStore
from coupons.domain import funding
from coupons.domain.coupons import iso
from coupons.domain.errors import Conflict, DomainError, Forbidden, InvalidField, Kind
from coupons.domain.ids import new_id
from coupons.domain.principals import Principal, Role


class VersionRace(Conflict):
    code = "funding_rule_version_conflict"
    title = "Another version of this rule was added at the same moment; retry"


def create(
    store: LedgerStore,
    terms: funding.RuleTerms,
    principal: Principal,
    *,
    completion: Completion | None = None,
) -> dict[str, Any]:
    principal.require(Role.ADMIN, Role.ISSUER)
    funding.check_version(terms)
    brand_id = terms.brand_id
    if principal.role is Role.ISSUER:
        if brand_id not in (None, principal.brand_id):
            raise Forbidden("an issuer makes rules for its own brand only", field="brand_id")
        brand_id = principal.brand_id
    now = datetime.now(UTC)
    rule = {
        "rule_id": new_id("fr"),
        "name": terms.name,
        "brand_id": brand_id,
        "created_at": iso(now),
        "created_by": str(principal),
    }
    version = _version(terms, 1, now, principal)
    header = {k: v for k, v in rule.items() if v is not None}
    answer = {**header, "versions": [version]}
    store.put_rule(header, version, completion=put_of(completion, answer))
    return answer


def add_version(
    store: LedgerStore,
    rule_id: str,
    terms: funding.RuleVersionTerms,
    principal: Principal,
    *,
    completion: Completion | None = None,
) -> dict[str, Any]:
    header, versions = readable(store, rule_id, principal)
    principal.require(Role.ADMIN, Role.ISSUER)
    if principal.role is Role.ISSUER and header.get("brand_id") != principal.brand_id:
        raise Forbidden("a platform-wide rule is changed by an admin only")
    funding.check_version(terms)
    now = datetime.now(UTC)
    if terms.effective_from is not None and terms.effective_from < now:
        # Journals already posted used the version in force then: a rule never changes the past.
        raise InvalidField("a new version cannot take effect in the past", field="effective_from")
    version = _version(terms, max(v["version"] for v in versions) + 1, now, principal)
    answer = {**header, "versions": sorted([*versions, version], key=lambda v: v["version"])}
    if not store.put_version(rule_id, version, completion=put_of(completion, answer)):
        raise VersionRace()
    return answer


def readable(
    store: LedgerStore, rule_id: str, principal: Principal
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Admin: all; an issuer: its brand's and the platform-wide ones; merchants: none."""
    found = store.rule(rule_id)
    if found is None or principal.role is Role.MERCHANT:
        raise funding.FundingRuleNotFound(field="rule_id")
    header, versions = found
    if principal.role is Role.ISSUER and header.get("brand_id") not in (None, principal.brand_id):
        raise funding.FundingRuleNotFound(field="rule_id")
    return header, sorted(versions, key=lambda v: v["version"])


class UnknownRuleReference(DomainError):
    kind = Kind.UNPROCESSABLE
    code = "funding_rule_not_found"
    title = "The campaign names a funding rule that does not exist or belongs to another brand"


def usable_by_campaign(store: LedgerStore, rule_id: str, brand_id: str) -> None:
    """A campaign may reference a platform-wide rule or one of its own brand's."""
    found = store.rule(rule_id)
    if found is None or found[0].get("brand_id") not in (None, brand_id):
        raise UnknownRuleReference(field="funding_rule_id")


def _version(
    terms: funding.RuleVersionTerms, number: int, now: datetime, principal: Principal
) -> dict[str, Any]:
    body = terms.model_dump(mode="json", exclude_none=True, exclude={"name", "brand_id"})
    # Whole seconds, as redemption times are: a redemption in the rule's first second finds it in force.
    body["effective_from"] = body.get("effective_from") or iso(now.replace(microsecond=0))
    return {**body, "version": number, "created_at": iso(now), "created_by": str(principal)}
