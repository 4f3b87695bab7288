"""Settlement step 2: fail with ClearingBehind (retried by the state machine) while records up to the
cut-off are not cleared."""

from aws_lambda_powertools import Logger

from coupons.observability import metrics, tracer
from coupons.settlement_wiring import steps

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    return steps().await_clearing(event["business_date"], cutoff_at=event.get("cutoff_at"))
