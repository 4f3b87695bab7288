"""The orders service the order-file function needs, built from its environment once per container, on
first use (never at import: a client made before moto starts would talk to real AWS)."""

from __future__ import annotations

import os
from functools import cache

from coupons.config import settings
from coupons.data.campaigns import CampaignStore
from coupons.data.clients import dynamodb
from coupons.data.coupons import CouponStore
from coupons.data.idempotency import IdempotencyStore
from coupons.data.ledger import LedgerStore
from coupons.data.orders import OrderStore
from coupons.data.reconciliation import ReconciliationStore
from coupons.data.redemptions import RedemptionStore
from coupons.services.orders import Orders
from coupons.services.redemption import Redeemer

GRACE_HOURS = "ORDER_OUTCOME_GRACE_HOURS"  # set by infra/constructs/reconciliation.py (the tenant file)


def _no_tenant_key() -> bytes:
    raise RuntimeError("a reversal verifies no code: the order-file function holds no tenant key")


@cache
def service() -> Orders:
    client, table = dynamodb(), settings().main_table
    idempotency = IdempotencyStore(client, table)
    redemptions = RedemptionStore(client, table)
    redeemer = Redeemer(CampaignStore(client, table), CouponStore(client, table), redemptions, idempotency,
                        tenant_key=_no_tenant_key, time_zone=settings().time_zone,
                        idempotency_ttl_seconds=settings().idempotency_ttl_seconds)  # fmt: skip
    return Orders(OrderStore(client, table), redeemer, redemptions, idempotency, ReconciliationStore(client, table),
                  ledger=LedgerStore(client, table), grace_hours=int(os.environ.get(GRACE_HOURS, "48")))  # fmt: skip


def reset() -> None:
    service.cache_clear()
