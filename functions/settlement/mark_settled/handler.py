"""Settlement step 7 (per batch of parties): mark the parties' claimed postings settled."""

from aws_lambda_powertools import Logger

from coupons.observability import metrics, tracer
from coupons.settlement_wiring import steps

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    return steps().mark_settled(event["run_id"], event["parties"])
