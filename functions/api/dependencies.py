"""The stores and services the routes use, built once per container on first use (never at import)."""

from __future__ import annotations

from functools import cache

from coupons.api.auth import Authenticator
from coupons.config import settings
from coupons.data.api_keys import ApiKeyStore
from coupons.data.campaigns import CampaignStore
from coupons.data.clients import dynamodb
from coupons.data.commission import CommissionStore
from coupons.data.coupons import CouponStore
from coupons.data.idempotency import IdempotencyStore
from coupons.data.ledger import LedgerStore
from coupons.data.redemption_holds import RedemptionHoldStore
from coupons.data.redemptions import RedemptionStore
from coupons.data.risk import GuessGate, RiskStore
from coupons.data.risk_holds import RiskHoldStore
from coupons.services.guesses import Guesses
from coupons.services.issuance import Issuer
from coupons.services.redemption import Redeemer
from coupons.services.redemption_holds import RedemptionHolds
from coupons.services.risk import RuleSets

__all__ = [
    "settings",
    "campaigns",
    "api_keys",
    "idempotency",
    "authenticator",
    "coupons",
    "issuer",
    "redeemer",
    "redemption_holds",
    "risk_holds",
    "tenant_key",
    "risk",
    "risk_rules",
]


@cache
def campaigns() -> CampaignStore:
    return CampaignStore(dynamodb(), settings().main_table)


@cache
def api_keys() -> ApiKeyStore:
    return ApiKeyStore(dynamodb(), settings().main_table)


@cache
def idempotency() -> IdempotencyStore:
    return IdempotencyStore(dynamodb(), settings().main_table)


@cache
def authenticator() -> Authenticator:
    return Authenticator(api_keys().get, cache_seconds=settings().api_key_cache_seconds)


@cache
def coupons() -> CouponStore:
    return CouponStore(dynamodb(), settings().main_table)


@cache
def issuer() -> Issuer:
    return Issuer(campaigns(), coupons(), tenant_key=tenant_key, risk_rules=risk_rules())


def tenant_key() -> bytes:
    from coupons.data.secrets import tenant_key as read  # Secrets Manager, on first use only

    return read()


@cache
def redeemer() -> Redeemer:
    return Redeemer(
        campaigns(),
        coupons(),
        RedemptionStore(dynamodb(), settings().main_table),
        idempotency(),
        tenant_key=tenant_key,
        time_zone=settings().time_zone,
        idempotency_ttl_seconds=settings().idempotency_ttl_seconds,
        risk_rules=risk_rules(),
        guesses=Guesses(GuessGate(dynamodb(), settings().main_table)),
        hold_seconds=settings().hold_seconds,
    )


@cache
def redemption_holds() -> RedemptionHolds:
    return RedemptionHolds(
        RedemptionHoldStore(dynamodb(), settings().main_table),
        idempotency(),
        time_zone=settings().time_zone,
        idempotency_ttl_seconds=settings().idempotency_ttl_seconds,
        tenant_key=tenant_key,  # hold ids are sealed under it: a merchant's capture or void reads nothing
    )


@cache
def risk() -> RiskStore:
    return RiskStore(dynamodb(), settings().main_table)


@cache
def risk_rules() -> RuleSets:
    return RuleSets(risk())


@cache
def risk_holds() -> RiskHoldStore:
    return RiskHoldStore(dynamodb(), settings().main_table)


@cache
def redemption_records() -> RedemptionStore:
    return RedemptionStore(dynamodb(), settings().main_table)


@cache
def commission() -> CommissionStore:
    return CommissionStore(dynamodb(), settings().main_table)


@cache
def ledger() -> LedgerStore:
    return LedgerStore(dynamodb(), settings().main_table)


@cache
def audit_reader():
    import os

    from coupons.data.audit import AuditStore
    from coupons.data.audit_heads import HeadArchive
    from coupons.data.clients import s3
    from coupons.services.audit_proofs import AuditReader

    return AuditReader(
        AuditStore(dynamodb(), settings().main_table, tenant=settings().tenant),
        HeadArchive(s3(), os.environ.get("AUDIT_BUCKET", "")),
    )


@cache
def tracer():
    from coupons.data.audit import AuditStore
    from coupons.data.reconciliation import ReconciliationStore
    from coupons.data.settlement import SettlementStore
    from coupons.data.trace import TraceReads
    from coupons.services.trace import Tracer

    client, table = dynamodb(), settings().main_table
    return Tracer(
        redemption_of=lambda rid, principal: redeemer().get(rid, principal),
        coupons=coupons(),
        ledger=ledger(),
        settlement=SettlementStore(client, table),
        reads=TraceReads(client, table),
        audit=AuditStore(client, table, tenant=settings().tenant),
        reconciliation=ReconciliationStore(client, table),  # read only: the reconciled step
        time_zone=settings().time_zone,
    )


@cache
def reconciliation_review():
    import os

    from coupons.data.reconciliation import ReconciliationStore
    from coupons.services.reconciliation_review import Review

    return Review(
        ReconciliationStore(dynamodb(), settings().main_table),
        four_eyes=os.environ.get("RECONCILIATION_FOUR_EYES", "false") == "true",
        ledger=ledger(),
        fee_bearer=os.environ.get("RECONCILIATION_FEE_BEARER", "platform"),
    )


@cache
def orders():
    import os

    from coupons.data.orders import OrderStore
    from coupons.data.reconciliation import ReconciliationStore
    from coupons.data.redemptions import RedemptionStore
    from coupons.services.orders import Orders

    client, table = dynamodb(), settings().main_table
    return Orders(
        OrderStore(client, table), redeemer(), RedemptionStore(client, table), idempotency(),
        ReconciliationStore(client, table), ledger=ledger(),
        grace_hours=int(os.environ.get("ORDER_OUTCOME_GRACE_HOURS", "48")),
    )  # fmt: skip


@cache
def instant():
    from coupons.data.instant import InstantStore

    return InstantStore(dynamodb(), settings().main_table)


@cache
def instant_terms():
    """The tenant's instant settlement terms (None: the tenant has none), from INSTANT_SETTLEMENT."""
    import os

    from coupons.services.instant import INSTANT_SETTLEMENT, parse_terms

    text = os.environ.get(INSTANT_SETTLEMENT)
    return parse_terms(text) if text else None
