"""Settlement step 8: total the run and close it; the state machine then emits SettlementRunCompleted."""

from aws_lambda_powertools import Logger

from coupons.settlement_wiring import steps

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context) -> dict:
    return steps().close(event["run_id"], event["execution"])
