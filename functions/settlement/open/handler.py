"""Settlement step 1: open the run for a business date (or, from the schedule, for the day before it fired)."""

from aws_lambda_powertools import Logger

from coupons.observability import metrics, tracer
from coupons.settlement_wiring import steps

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    given = event.get("input") or {}
    return steps().open(
        execution=event["execution"],
        business_date=given.get("business_date"),
        scheduled_at=given.get("scheduled_at"),
    )
