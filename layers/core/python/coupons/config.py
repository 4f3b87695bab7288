"""Settings a function reads from its environment (set by the CDK stack), read once per container."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from coupons.data.schema import MAIN

HOLIDAY_CALENDAR_ENV = "TENANT_HOLIDAY_CALENDAR"
T0_CUTOFF_ENV = "SETTLEMENT_T0_CUTOFF"


@dataclass(frozen=True)
class Settings:
    tenant: str
    main_table: str
    # How long a verified API key is trusted without a read; a revocation takes effect within it.
    api_key_cache_seconds: int
    # Idempotency records live this long (the contract promises at least 24 h).
    idempotency_ttl_seconds: int
    # Business dates (what T+N settlement counts from) are calendar dates in the tenant's zone.
    time_zone: str
    # The tenant's holiday calendar (coupons.domain.calendars, compact JSON); None: T+N in calendar days.
    holiday_calendar: str | None = None
    # T+0's cut-off, local "HH:MM" (the tenant file's settlement_t0_cutoff); None: no intraday run.
    settlement_t0_cutoff: str | None = None
    # The audit log's shard logs (coupons.services.audit): hash of the item's pk (or caller) mod this.
    audit_log_shards: int = 4
    # A redemption hold's life unless its campaign says (the tenant file's hold_seconds).
    hold_seconds: int = 1800


@cache
def settings() -> Settings:
    env = os.environ
    return Settings(
        tenant=env.get("TENANT", "local"),
        main_table=env[MAIN.env_var],
        api_key_cache_seconds=int(env.get("API_KEY_CACHE_SECONDS", "60")),
        idempotency_ttl_seconds=int(env.get("IDEMPOTENCY_TTL_SECONDS", str(48 * 3600))),
        time_zone=env.get("TENANT_TIME_ZONE", "UTC"),
        holiday_calendar=env.get(HOLIDAY_CALENDAR_ENV) or None,
        audit_log_shards=int(env.get("AUDIT_LOG_SHARDS", "4")),
        hold_seconds=int(env.get("HOLD_SECONDS", "1800")),
        settlement_t0_cutoff=env.get(T0_CUTOFF_ENV) or None,
    )
