"""Settlement step 8: total the run and close it; the state machine then emits SettlementRunCompleted."""

from aws_lambda_powertools import Logger

from coupons.observability import Event, count, metrics, tracer
from coupons.settlement_wiring import steps

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    closed = steps().close(event["run_id"], event["execution"])
    count(Event.SETTLEMENT_RUN_CLOSED)
    return closed
