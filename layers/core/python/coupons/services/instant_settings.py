"""The API's side of instant settlement (docs/instant.md): a merchant's settlement mode (admin sets it;
the tenant file's default applies otherwise), a campaign's (admin sets it: INSTANT makes its merchants'
redemption postings instant) and a party's instant statement of the day."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from coupons.data.campaigns import CampaignStore
from coupons.data.instant import InstantStore
from coupons.domain.coupons import iso
from coupons.domain.errors import CampaignNotFound, InvalidField
from coupons.domain.instant import InstantTerms, SettlementMode
from coupons.domain.principals import Principal, Role
from coupons.services.accounts import check_account

_MERCHANT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _merchant(merchant_id: str) -> str:
    if not _MERCHANT_ID.match(merchant_id):
        raise InvalidField("a merchant id is 1..64 letters, digits, '_', '.', '-'", field="merchant_id")
    return merchant_id


def set_mode(
    store: InstantStore,
    terms: InstantTerms | None,
    merchant_id: str,
    mode: SettlementMode,
    principal: Principal,
) -> dict[str, Any]:
    principal.require(Role.ADMIN)
    merchant_id = _merchant(merchant_id)
    _refuse_without_instant(terms, mode)
    store.set_mode(merchant_id, mode.value, at=iso(datetime.now(UTC)), by=str(principal))
    return mode_of(store, terms, merchant_id, principal)


def mode_of(store: InstantStore, terms: InstantTerms | None, merchant_id: str, principal: Principal) -> dict:
    """The merchant's mode in force: its own, else the tenant's default. Admin, finance, or itself."""
    check_account(f"merchant:{_merchant(merchant_id)}", principal)
    own = store.mode(merchant_id)
    default = (terms or InstantTerms()).default_mode if terms else SettlementMode.SCHEDULED
    if own is None:
        return {"merchant_id": merchant_id, "mode": default.value, "source": "tenant"}
    view = {k: own[k] for k in ("merchant_id", "mode", "updated_at", "updated_by") if k in own}
    return view | {"source": "merchant"}


def _refuse_without_instant(terms: InstantTerms | None, mode: SettlementMode) -> None:
    if terms is None and mode is SettlementMode.INSTANT:
        # Without instant settlement deployed nobody would pay it instantly: say so, write nothing.
        raise InvalidField("this tenant has no instant settlement (its tenant file)", field="mode")


def set_campaign_mode(
    store: InstantStore,
    campaigns: CampaignStore,
    terms: InstantTerms | None,
    campaign_id: str,
    mode: SettlementMode,
    principal: Principal,
) -> dict[str, Any]:
    """An admin's: INSTANT makes the campaign's merchants' redemption postings instant (whatever their
    own mode); SCHEDULED takes that back (their own modes decide again). From the payout's next batch."""
    principal.require(Role.ADMIN)
    _refuse_without_instant(terms, mode)
    if campaigns.get(campaign_id) is None:
        raise CampaignNotFound(field="campaign_id")
    store.set_campaign_mode(campaign_id, mode.value, at=iso(datetime.now(UTC)), by=str(principal))
    return campaign_mode_of(store, campaigns, campaign_id, principal)


def campaign_mode_of(
    store: InstantStore, campaigns: CampaignStore, campaign_id: str, principal: Principal
) -> dict[str, Any]:
    """The campaign's mode: its own (`source: "campaign"`), else SCHEDULED (`source: "default"`: its
    merchants' modes decide). Admin, finance, or the campaign's issuer (another brand's: 404)."""
    principal.require(Role.ADMIN, Role.FINANCE, Role.ISSUER)
    campaign = campaigns.get(campaign_id)
    if campaign is None or (principal.role is Role.ISSUER and campaign["brand_id"] != principal.brand_id):
        raise CampaignNotFound(field="campaign_id")  # ids do not leak across brands
    own = store.campaign_mode(campaign_id)
    if own is None:
        return {"campaign_id": campaign_id, "mode": SettlementMode.SCHEDULED.value, "source": "default"}
    view = {k: own[k] for k in ("campaign_id", "mode", "updated_at", "updated_by") if k in own}
    return view | {"source": "campaign"}


def statement(store: InstantStore, party: str, day: str, principal: Principal) -> dict[str, Any]:
    """A party's instant payouts of one business date, and per currency their totals (= the payouts)."""
    party = check_account(party, principal)
    if not _DAY.match(day):
        raise InvalidField("a date is YYYY-MM-DD", field="date")
    lines = sorted(store.statement(party, day), key=lambda line: (line["sent_at"], line["payout_id"]))
    totals: dict[str, dict[str, int]] = {}
    for line in lines:
        t = totals.setdefault(
            line["currency"], {"amount": 0, "transferred": 0, "fee": 0, "payouts": 0, "postings": 0}
        )
        t["amount"] += line["amount"]
        t["transferred"] += line["transferred"]
        t["fee"] += line["fee"]
        t["payouts"] += 1
        t["postings"] += line["postings"]
    return {
        "party": party,
        "date": day,
        "payouts": [{k: v for k, v in line.items() if k not in ("party", "day", "kind")} for line in lines],
        "totals": [{"currency": c, **t} for c, t in sorted(totals.items())],
    }
