"""The state machine's Catch: mark the run FAILED with the error, so that starting it again resumes it."""

from aws_lambda_powertools import Logger

from coupons.settlement_wiring import steps

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context) -> dict:
    failure = event.get("failure") or {}
    logger.error("settlement run failed", extra={"run_id": event["run_id"], **failure})
    return steps().record_failure(
        event["run_id"], event["execution"], failure.get("Error", "Unknown"), failure.get("Cause", "")
    )
