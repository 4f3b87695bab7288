"""Hold expiry function: every minute (an EventBridge rule), releases the redemption holds whose time is up.

Each release is one conditional transaction (still HELD and due: services/redemption_holds.py), so a release racing
a capture or a void, two overlapping sweeps, or a hold listed twice by the eventually consistent index,
releases it exactly once. Not DynamoDB TTL: TTL deletes up to days late and restores nothing.
"""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit

from coupons.config import settings
from coupons.data.clients import dynamodb
from coupons.data.idempotency import IdempotencyStore
from coupons.data.redemption_holds import RedemptionHoldStore
from coupons.observability import metrics, tracer
from coupons.services.redemption_holds import RedemptionHolds

logger = Logger()
# A sweep stops starting new releases after this long (the function's timeout is 60 s): the next
# minute's sweep goes on where it stopped.
BUDGET_SECONDS = 45.0


@cache
def holds() -> RedemptionHolds:
    return RedemptionHolds(
        RedemptionHoldStore(dynamodb(), settings().main_table),
        IdempotencyStore(dynamodb(), settings().main_table),
        time_zone=settings().time_zone,
        idempotency_ttl_seconds=settings().idempotency_ttl_seconds,
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    outcome = holds().release_due(budget_seconds=BUDGET_SECONDS)
    metrics.add_metric(name="RedemptionHoldsReleased", unit=MetricUnit.Count, value=outcome["released"])
    if outcome["released"]:
        logger.info("released expired redemption holds", extra=outcome)
    return outcome
