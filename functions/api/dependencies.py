"""The stores and services the routes use, built once per container on first use (never at import)."""

from __future__ import annotations

from functools import cache

from coupons.api.auth import Authenticator
from coupons.config import settings
from coupons.data.api_keys import ApiKeyStore
from coupons.data.campaigns import CampaignStore
from coupons.data.clients import dynamodb
from coupons.data.coupons import CouponStore
from coupons.data.idempotency import IdempotencyStore
from coupons.data.ledger import LedgerStore
from coupons.data.redemptions import RedemptionStore
from coupons.services.issuance import Issuer
from coupons.services.redemption import Redeemer

__all__ = [
    "settings",
    "campaigns",
    "api_keys",
    "idempotency",
    "authenticator",
    "coupons",
    "issuer",
    "redeemer",
    "tenant_key",
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
    return Issuer(campaigns(), coupons(), tenant_key=tenant_key)


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
    )


@cache
def ledger() -> LedgerStore:
    return LedgerStore(dynamodb(), settings().main_table)


@cache
def reconciliation_review():
    import os

    from coupons.data.reconciliation import ReconciliationStore
    from coupons.services.reconciliation_review import Review

    return Review(
        ReconciliationStore(dynamodb(), settings().main_table),
        four_eyes=os.environ.get("RECONCILIATION_FOUR_EYES", "false") == "true",
    )
