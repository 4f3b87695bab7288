"""The settlement services a function needs, built from its environment once per container, on first
use (never at import: a client made before moto starts would talk to real AWS)."""

from __future__ import annotations

import os
from functools import cache

from coupons.config import settings
from coupons.data.clients import dynamodb, s3, stepfunctions
from coupons.data.redemptions import RedemptionStore
from coupons.data.risk_holds import RiskHoldStore
from coupons.data.settlement import SettlementStore
from coupons.data.statements import StatementStore
from coupons.data.workflows import SettlementWorkflow
from coupons.services.risk_holds import ClaimFilter
from coupons.services.settlement import SettlementSteps, parse_fees, parse_minimums
from coupons.services.settlement_runs import SettlementRuns

# Set by infra/constructs/settlement.py on the functions that need them.
STATEMENTS_BUCKET = "STATEMENTS_BUCKET_NAME"
STATE_MACHINE_ARN = "SETTLEMENT_STATE_MACHINE_ARN"
MINIMUM_TRANSFER = "SETTLEMENT_MINIMUM_TRANSFER"
CHANNEL_FEES = "SETTLEMENT_CHANNEL_FEES"  # the tenant file's channel_fees, JSON


@cache
def store() -> SettlementStore:
    return SettlementStore(dynamodb(), settings().main_table)


@cache
def statements() -> StatementStore:
    return StatementStore(s3(), os.environ[STATEMENTS_BUCKET])


@cache
def _channel():
    from coupons.channels import channel_from_environment  # only the pay step talks to a channel

    return channel_from_environment()


@cache
def steps() -> SettlementSteps:
    return SettlementSteps(
        store(),
        RedemptionStore(dynamodb(), settings().main_table),
        statements(),
        _channel,
        time_zone=settings().time_zone,
        minimums=parse_minimums(os.environ.get(MINIMUM_TRANSFER)),
        channel_name=os.environ.get("PAYMENT_CHANNEL", "simulated"),
        fees=parse_fees(os.environ.get(CHANNEL_FEES)),
        holds=lambda at: ClaimFilter(RiskHoldStore(dynamodb(), settings().main_table), at),
        t0_cutoff=settings().settlement_t0_cutoff,
    )


@cache
def _workflow() -> SettlementWorkflow:
    return SettlementWorkflow(stepfunctions(), os.environ[STATE_MACHINE_ARN])


@cache
def runs() -> SettlementRuns:
    return SettlementRuns(
        store(),
        statements(),
        _workflow,
        tenant=settings().tenant,
        time_zone=settings().time_zone,
        t0_cutoff=settings().settlement_t0_cutoff,
    )


def reset() -> None:
    """Forget every built service (tests, between moto instances)."""
    for built in (store, statements, _channel, steps, _workflow, runs):
        built.cache_clear()
