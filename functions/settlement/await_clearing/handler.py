"""Settlement step 2: fail with ClearingBehind (retried by the state machine) while records up to the
cut-off are not cleared."""

from aws_lambda_powertools import Logger

from coupons.settlement_wiring import steps

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context) -> dict:
    return steps().await_clearing(event["business_date"])
