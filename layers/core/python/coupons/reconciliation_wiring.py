"""The reconciliation service a function needs, built from its environment once per container, on
first use (never at import: a client made before moto starts would talk to real AWS)."""

from __future__ import annotations

import json
import os
from functools import cache

from coupons.config import settings
from coupons.data.channel_statements import ChannelStatementStore
from coupons.data.clients import dynamodb, s3, stepfunctions
from coupons.data.ledger import LedgerStore
from coupons.data.reconciliation import ReconciliationStore
from coupons.data.settlement import SettlementStore
from coupons.services.reconciliation import LINES_PER_BUCKET as DEFAULT_LINES_PER_BUCKET
from coupons.services.reconciliation import Reconciliation, parse_policy

# Set by infra/constructs/reconciliation.py.
STATEMENTS_BUCKET = "STATEMENTS_BUCKET_NAME"
STATE_MACHINE_ARN = "RECONCILIATION_STATE_MACHINE_ARN"
POLICY = "RECONCILIATION_POLICY"  # the tenant file's compensation policy, JSON
LINES_PER_BUCKET = "RECONCILIATION_LINES_PER_BUCKET"  # a file not in id order: lines per hash bucket
FORMATS = "RECONCILIATION_STATEMENT_FORMATS"  # JSON {channel: format name}; default coupons-bill


@cache
def store() -> ReconciliationStore:
    return ReconciliationStore(dynamodb(), settings().main_table)


@cache
def _channel():
    from coupons.channels import channel_from_environment  # only compensation talks to the channel

    return channel_from_environment()


@cache
def service() -> Reconciliation:
    return Reconciliation(
        store(),
        ChannelStatementStore(s3(), os.environ[STATEMENTS_BUCKET]),
        SettlementStore(dynamodb(), settings().main_table),
        LedgerStore(dynamodb(), settings().main_table),
        _channel,
        time_zone=settings().time_zone,
        policy=parse_policy(os.environ.get(POLICY)),
        lines_per_bucket=int(os.environ.get(LINES_PER_BUCKET) or DEFAULT_LINES_PER_BUCKET),
        formats=json.loads(os.environ.get(FORMATS) or "{}"),
    )


def start_execution(name: str, payload: str) -> bool:
    """True if this call started it; False when an execution of that name exists (the same file
    version delivered again: one run)."""
    client = stepfunctions()
    try:
        client.start_execution(stateMachineArn=os.environ[STATE_MACHINE_ARN], name=name, input=payload)
        return True
    except client.exceptions.ExecutionAlreadyExists:
        return False


def reset() -> None:
    for built in (store, _channel, service):
        built.cache_clear()
