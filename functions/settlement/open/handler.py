"""Settlement step 1: open the run of a settlement date and kind (from the schedule: of the local date it
fired on), with its cut-off."""

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
        settlement_date=given.get("settlement_date"),
        kind=given.get("kind"),
        cutoff_at=given.get("cutoff_at"),
        scheduled_at=given.get("scheduled_at"),
        business_date=given.get("business_date"),
    )
