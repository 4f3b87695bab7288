"""The state machine's Catch: mark the run FAILED with the error, so that starting it again resumes it."""

from aws_lambda_powertools import Logger

from coupons.observability import Event, count, metrics, tracer
from coupons.settlement_wiring import steps

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    failure = event.get("failure") or {}
    logger.error("settlement run failed", extra={"run_id": event["run_id"], **failure})
    recorded = steps().record_failure(
        event["run_id"], event["execution"], failure.get("Error", "Unknown"), failure.get("Cause", "")
    )
    count(Event.SETTLEMENT_RUN_FAILED, recorded.get("status") == "FAILED")
    return recorded
