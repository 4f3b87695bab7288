"""Tenant settings: one JSON file per tenant in infra/tenants/, validated before anything is synthesized."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from coupons.domain.calendars import BusinessCalendar, parse_calendar
from coupons.domain.channel_fees import FeeSchedule, check_fees_below_minimum
from coupons.domain.money import Currency
from coupons.domain.reconciliation.formats import formats as statement_formats

TENANTS_DIR = Path(__file__).resolve().parent / "tenants"
# Holiday calendars (one file each, named by a tenant's `holiday_calendar`); not tenants themselves.
CALENDARS_DIR = TENANTS_DIR / "calendars"
_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"

# EventBridge Scheduler's cron: minutes hours day-of-month month day-of-week year, evaluated in
# the tenant's time zone (a plain EventBridge rule would read it as UTC).
_CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")


Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
# An API route as the API function serves it: a method and a path under /v1, a parameter written
# {name} (API Gateway throttles per resource and method; one {param} resource serves every value).
Route = Annotated[str, Field(pattern=r"^(GET|POST|PUT|PATCH|DELETE) /v1(/([a-z0-9-]+|\{[a-z_]+\}))+$")]


class Throttle(BaseModel):
    """API Gateway's token bucket: `rate_limit` requests per second steady, `burst_limit` at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit: int = Field(ge=1, le=10_000)
    burst_limit: int = Field(ge=1, le=5_000)


class ReconciliationPolicy(BaseModel):
    """coupons.domain.reconciliation.compensation.Policy, from the tenant file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Per currency, the largest |fee difference| (minor units) adjusted without a person.
    fee_tolerance: dict[Currency, Annotated[int, Field(ge=0, le=10**9)]] = Field(default_factory=dict)
    fee_bearer: str = Field(default="platform", pattern=r"^(platform|brand:[^\s]+|merchant:[^\s]+)$")
    duplicates: Literal["recover", "review"] = "recover"
    timing_days: int = Field(default=2, ge=1, le=30)


class InstantSettlement(BaseModel):
    """Instant settlement (docs/instant.md; coupons.domain.instant.InstantTerms): the merchants' default
    mode (each may set its own through the admin route), the stream's batching window (the longest a
    cleared posting waits: at most 60 s), the most records per batch, the smallest instant payout per
    currency (none unless set: the runs' minimum transfer does not apply), how many failed attempts
    before a payout's postings are left to the next scheduled run, and the flush threshold per currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    default_mode: Literal["SCHEDULED", "INSTANT"] = "SCHEDULED"
    window_seconds: int = Field(default=60, ge=1, le=60)
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    minimum_transfer: dict[Currency, Annotated[int, Field(ge=0, le=10**12)]] = Field(default_factory=dict)
    max_attempts: int = Field(default=3, ge=1, le=5)  # under the stream mapping's 5 retries
    # Per currency, a party's pending amount in one window that pays it at once, before the window ends
    # (docs/instant.md, "The threshold flush"): clearing counts each merchant's redemption posting, a
    # windowless stream mapping fires on the crossing. None set: windows only, clearing unchanged.
    flush_threshold: dict[Currency, Annotated[int, Field(ge=1, le=10**12)]] = Field(default_factory=dict)


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Part of the stack name and of tags; short and DNS-safe so it fits anywhere a name is derived.
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,20}$")
    display_name: str = Field(min_length=1, max_length=80)
    default_currency: Currency
    settlement_time_zone: str
    settlement_schedule: str
    # A revoked API key keeps working for at most this long in a warm container.
    api_key_cache_seconds: int = Field(ge=0, le=900)
    # How long a redemption hold ("capture": false) lasts unless its campaign says (docs/redemption.md
    # "Holds"): at most 7 days; it releases itself then, by the every-minute sweep.
    hold_seconds: int = Field(default=1800, ge=60, le=7 * 24 * 3600)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Each address gets an SNS e-mail subscription to the alarm topic (confirmed once by its owner).
    alarm_emails: tuple[Email, ...] = ()
    # The state machine's own log (Step Functions levels). ERROR records failed states only; execution
    # data (amounts, parties) is never logged, whatever the level.
    settlement_log_level: Literal["OFF", "ERROR", "FATAL", "ALL"] = "ERROR"
    # Local time (tenant's zone) by which the previous business date's run must be closed: a check at
    # that time alarms otherwise. After the schedule, with room for clearing's wait and retries.
    settlement_deadline: str = Field(default="06:00", pattern=_CLOCK)
    # T+0's cut-off (local time): what was redeemed before it is paid the same day by the intraday run
    # (coupons/domain/timeline.py). None: the tenant has no intraday run; T+0 is paid by the next daily.
    settlement_t0_cutoff: str | None = Field(default=None, pattern=_CLOCK)
    # A file of infra/tenants/calendars/: T+N then counts business days. None: calendar days.
    holiday_calendar: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,40}$")
    # Per payment channel, what it charges per transfer and who bears it (coupons/domain/channel_fees.py).
    channel_fees: dict[str, FeeSchedule] = Field(default_factory=dict)
    api_throttle: Throttle = Throttle(rate_limit=100, burst_limit=200)
    # Tighter limits on single routes ("METHOD /path", as the API serves them), e.g. the redemption hot path.
    api_route_throttles: dict[Route, Throttle] = Field(default_factory=dict)
    # Requests per source IP per 5 minutes before the web ACL blocks that IP (WAF's minimum is 10).
    waf_rate_limit_per_ip: int = Field(default=1000, ge=10, le=2_000_000_000)
    # Concurrency set aside (and the most allowed) for clearing and for each settlement step, so an API
    # flood of this or another tenant can never take it: the account's unreserved pool must keep 100.
    clearing_reserved_concurrency: int = Field(default=5, ge=1, le=100)
    settlement_reserved_concurrency: int = Field(default=10, ge=1, le=100)
    # The audit log (docs/audit.md): shard logs (hash of the item's pk mod this), how often a tree head is
    # signed and published, and how long each published head is locked (S3 Object Lock, compliance mode).
    audit_log_shards: int = Field(default=4, ge=1, le=64)
    audit_head_minutes: int = Field(default=5, ge=1, le=60)
    audit_retention_years: int = Field(default=7, ge=1, le=100)
    # Where payouts and collections go. Only the simulated bank exists so far (a real channel adapter
    # is a later issue); it keeps its own records in a table of the stack.
    payment_channel: Literal["simulated"] = "simulated"
    # Per currency, the smallest transfer worth making (minor units): a party whose net is smaller,
    # either way, carries it forward to the next run instead.
    settlement_minimum_transfer: dict[Currency, Annotated[int, Field(ge=0, le=10**12)]] = Field(
        default_factory=dict
    )
    # Instant settlement (即时到账): None, no instant payout function (every merchant is paid by runs).
    instant_settlement: InstantSettlement | None = None
    # Reconciliation's automatic compensations (docs/reconciliation.md), and whether resolving an
    # exception needs a second finance principal (four-eyes: the approver is not the proposer).
    reconciliation_policy: ReconciliationPolicy = ReconciliationPolicy()
    reconciliation_four_eyes: bool = False
    # Per payment channel (as named in channel-statements/{channel}/...), the format of its statement
    # file: a name of coupons.domain.reconciliation.formats (a channel not named: coupons-bill).
    reconciliation_statement_formats: dict[
        Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")], str
    ] = Field(default_factory=dict)
    # Orders against coupons: a redemption whose order reported no outcome (PAID, CANCELLED, REFUNDED)
    # this many hours after it is an ORDER_OUTCOME_MISSING exception.
    order_outcome_grace_hours: Annotated[int, Field(ge=1, le=24 * 31)] = 48

    @field_validator("settlement_time_zone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"not an IANA time zone: {value!r}") from err
        return value

    @field_validator("holiday_calendar")
    @classmethod
    def _calendar_exists(cls, value: str | None) -> str | None:
        if value is not None:
            _read_calendar(value)  # a missing or malformed calendar fails here, before synthesis
        return value

    @field_validator("reconciliation_statement_formats")
    @classmethod
    def _known_formats(cls, value: dict[str, str]) -> dict[str, str]:
        known = statement_formats()
        for channel, name in value.items():
            if name not in known:
                raise ValueError(
                    f"unknown statement format {name!r} for channel {channel!r} (known: {', '.join(known)})"
                )
        return value

    @model_validator(mode="after")
    def _fees_fit_the_minimum(self) -> Tenant:
        for channel, schedule in self.channel_fees.items():
            check_fees_below_minimum(channel, schedule, self.settlement_minimum_transfer)
        return self

    def business_calendar(self) -> BusinessCalendar | None:
        return _read_calendar(self.holiday_calendar) if self.holiday_calendar else None

    @field_validator("settlement_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not _CRON.match(value):
            raise ValueError(f"expected an EventBridge Scheduler cron(...) with six fields: {value!r}")
        return value


def _read_calendar(name: str) -> BusinessCalendar:
    path = CALENDARS_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"no holiday calendar {path}")
    return parse_calendar(json.loads(path.read_text()))


def tenant_names() -> list[str]:
    return sorted(path.stem for path in TENANTS_DIR.glob("*.json"))


def load_tenant(name: str) -> Tenant:
    path = TENANTS_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"unknown tenant {name!r}: no {path}; known: {', '.join(tenant_names())}")
    tenant = Tenant.model_validate(json.loads(path.read_text()))
    # The file name is what `-c tenant=` selects; a mismatch would deploy one tenant under another's name.
    if tenant.name != name:
        raise ValueError(f"{path} declares name {tenant.name!r}; it must equal the file name")
    return tenant


def load_tenants(names: list[str] | None = None) -> list[Tenant]:
    return [load_tenant(name) for name in (names if names is not None else tenant_names())]
