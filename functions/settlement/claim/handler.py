"""Settlement step 3 (one invocation per ledger shard): claim the shard's due, unsettled postings
whose event came before the run's cut-off."""

from aws_lambda_powertools import Logger

from coupons.observability import metrics, tracer
from coupons.settlement_wiring import steps

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    result = steps().claim(
        event["run_id"], event["business_date"], int(event["shard"]), cutoff_at=event.get("cutoff_at")
    )
    logger.info("claimed", extra=result)
    return result
