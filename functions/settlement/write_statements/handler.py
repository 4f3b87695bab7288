"""Settlement step 6 (per batch of parties): write each party's statement, JSON and CSV, to S3."""

from aws_lambda_powertools import Logger

from coupons.observability import metrics, tracer
from coupons.settlement_wiring import steps

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    return steps().write_statements(event["run_id"], event["business_date"], event["parties"])
