"""Funding rules: created by an admin (a platform rule naming the brands that may use it, or a brand's
rule) or an issuer (its brand's), versioned, never changed in place, never retroactive. An issuer's
version that commits anyone but its brand is only proposed until an admin approves it."""

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
from coupons.domain.times import parse as _parse


class VersionRace(Conflict):
    code = "funding_rule_version_conflict"
    title = "Another version of this rule was added at the same moment; retry"


def create(
    store: LedgerStore,
    terms: funding.RuleTerms,
    principal: Principal,
    *,
    now: datetime | None = None,
    completion: Completion | None = None,
) -> dict[str, Any]:
    principal.require(Role.ADMIN, Role.ISSUER)
    funding.check_version(terms)
    brand_id = terms.brand_id
    if principal.role is Role.ISSUER:
        if brand_id not in (None, principal.brand_id):
            raise Forbidden("an issuer makes rules for its own brand only", field="brand_id")
        if terms.brand_ids is not None:
            raise Forbidden("only an admin makes platform rules for brands", field="brand_ids")
        brand_id = principal.brand_id
    now = now or datetime.now(UTC)
    rule = {
        "rule_id": new_id("fr"),
        "name": terms.name,
        "brand_id": brand_id,
        "brand_ids": terms.brand_ids,
        "created_at": iso(now),
        "created_by": str(principal),
    }
    version = _version(terms, 1, now, principal, first=True)
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
    now: datetime | None = None,
    completion: Completion | None = None,
) -> dict[str, Any]:
    header, versions = readable(store, rule_id, principal)
    principal.require(Role.ADMIN, Role.ISSUER)
    if principal.role is Role.ISSUER and header.get("brand_id") != principal.brand_id:
        raise Forbidden("a platform rule is changed by an admin only")
    funding.check_version(terms)
    now = now or datetime.now(UTC)
    if terms.effective_from is not None and terms.effective_from < now:
        # Journals already posted used the version in force then: a rule never changes the past.
        raise InvalidField("a new version cannot take effect in the past", field="effective_from")
    if len(versions) >= funding.MAX_VERSIONS:
        raise funding.TooManyVersions()
    first = not any(funding.is_approved(v) for v in versions)
    version = _version(terms, max(v["version"] for v in versions) + 1, now, principal, first=first)
    answer = {**header, "versions": sorted([*versions, version], key=lambda v: v["version"])}
    if not store.put_version(rule_id, version, completion=put_of(completion, answer)):
        raise VersionRace()
    return answer


def approve(
    store: LedgerStore, rule_id: str, number: int, principal: Principal, *, now: datetime | None = None
) -> dict[str, Any]:
    """An admin approves a proposed version; approving an approved one changes nothing (idempotent).

    The version takes effect at its proposed effective_from or at the approval, whichever is later:
    redemptions made before the approval were (or will be) cleared under what was approved then."""
    principal.require(Role.ADMIN)
    header, versions = readable(store, rule_id, principal)
    version = next((v for v in versions if v["version"] == number), None)
    if version is None:
        raise funding.FundingRuleNotFound(f"rule {rule_id} has no version {number}", field="version")
    if not funding.is_approved(version):
        now = now or datetime.now(UTC)
        first = not any(funding.is_approved(v) for v in versions)
        starts = max(_parse(version["effective_from"]), _start(now, first=first))
        store.approve_version(
            rule_id, number, effective_from=iso(starts), approved_at=iso(now), approved_by=str(principal)
        )
        header, versions = readable(store, rule_id, principal)
    return {**header, "versions": versions}


def readable(
    store: LedgerStore, rule_id: str, principal: Principal
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Admin: all; an issuer: its brand's and the platform rules naming it (and of those names, its
    own only: which other brands a platform rule serves is not its business); merchants: none."""
    found = store.rule(rule_id)
    if found is None or principal.role is Role.MERCHANT:
        raise funding.FundingRuleNotFound(field="rule_id")
    header, versions = found
    if principal.role is Role.ISSUER:
        if not _serves(header, principal.brand_id):
            raise funding.FundingRuleNotFound(field="rule_id")
        if "brand_ids" in header:
            header = {**header, "brand_ids": [principal.brand_id]}
    return header, sorted(versions, key=lambda v: v["version"])


class UnknownRuleReference(DomainError):
    kind = Kind.UNPROCESSABLE
    code = "funding_rule_not_found"
    title = "The campaign names a funding rule that does not exist or does not serve its brand"


def usable_by_campaign(store: LedgerStore, rule_id: str, brand_id: str) -> None:
    """A campaign may use a rule of its own brand, or a platform rule that names its brand, and only once
    an approved version exists (clearing never applies a proposed one)."""
    found = store.rule(rule_id)
    if found is None or not _serves(found[0], brand_id):
        raise UnknownRuleReference(field="funding_rule_id")
    if not any(funding.is_approved(v) for v in found[1]):
        raise funding.FundingRuleNotApproved(field="funding_rule_id")


def _serves(header: dict[str, Any], brand_id: str | None) -> bool:
    """A brand's rule serves that brand; a platform rule (no brand_id) the brands in its brand_ids."""
    if "brand_id" in header:
        return header["brand_id"] == brand_id
    return brand_id in header.get("brand_ids", [])


def _start(now: datetime, *, first: bool) -> datetime:
    """When a version made (or approved) now takes over. Redemptions are stamped in whole seconds
    (truncated), so a version after an approved one starts at the next whole second: one made at
    12:00:00.5 must not apply to a redemption made at 12:00:00.4 under the version before. The rule's
    first approved version starts at the current second: there is nothing before it to override, and a
    campaign made with it at once would otherwise find no version in force for its first second."""
    return now.replace(microsecond=0) if first else funding.next_whole_second(now)


def _version(
    terms: funding.RuleVersionTerms, number: int, now: datetime, principal: Principal, *, first: bool
) -> dict[str, Any]:
    body = terms.model_dump(mode="json", exclude_none=True, exclude={"name", "brand_id", "brand_ids"})
    body["effective_from"] = body.get("effective_from") or iso(_start(now, first=first))
    status = funding.status_when_made(terms, by_admin=principal.role is Role.ADMIN)
    record = {
        **body,
        "version": number,
        "status": status.value,
        "created_at": iso(now),
        "created_by": str(principal),
    }
    if status is funding.VersionStatus.APPROVED:
        record.update(approved_at=iso(now), approved_by=str(principal))
    return record
