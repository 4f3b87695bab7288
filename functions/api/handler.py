"""API function: authenticate the caller, then route (routes/*), answering errors as problem+json."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

import dependencies
from coupons.api import audit_calls, problems
from coupons.api.auth import HEADER as API_KEY_HEADER
from coupons.data.clients import sqs
from coupons.domain.api_keys import key_id_of
from coupons.domain.errors import DomainError
from coupons.observability import count_api_answer, metrics, tracer
from resolver import app
from routes import (  # noqa: F401  (registers routes)
    accounts,
    api_keys,
    audit,
    campaigns,
    commission,
    coupons,
    funding_rules,
    instant,
    meta,
    orders,
    reconciliation,
    redemptions,
    risk,
    settlement_runs,
    trace,
)

logger = Logger()

PUBLIC_PATHS = frozenset({meta.OPENAPI_PATH})


def _header(event: dict, name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return value
    return None


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # an answer carries codes and amounts
def lambda_handler(event: dict, context) -> dict:
    # Authentication comes before routing and validation: a caller without a valid key learns
    # nothing else (not which routes exist, nor what a body should look like).
    principal = key_id = None
    if event.get("path") not in PUBLIC_PATHS:
        plain_key = _header(event, API_KEY_HEADER)
        key_id = key_id_of(plain_key) if isinstance(plain_key, str) else None
        try:
            principal = dependencies.authenticator().principal(plain_key)
        except DomainError as error:
            answer = problems.as_proxy(problems.from_domain_error(error))
            _audit(event, answer, None, key_id)
            return answer
        # The key's id (never the key) scopes the caller's Idempotency-Keys.
        app.append_context(principal=principal, api_key_id=key_id)
        logger.append_keys(principal=str(principal))
    answer = app.resolve(event, context)
    count_api_answer(event, answer)
    _audit(event, answer, principal, key_id)
    return answer


def _audit(event: dict, answer: dict, principal, key_id) -> None:
    """The call's audit record to the audit queue (coupons/api/audit_calls.py); a failed send is
    logged and counted, the answer stands."""
    try:
        audit_calls.send(sqs, audit_calls.record(event, answer, principal=principal, key_id=key_id))
    except Exception:  # noqa: BLE001 - auditing a call must never fail the call
        logger.exception("audit record not sent")
        metrics.add_metric(name="AuditCallNotSent", unit=MetricUnit.Count, value=1)
