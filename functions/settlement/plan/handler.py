"""Settlement step 4: list the run's parties in batches, in S3, for the Distributed Map."""

from aws_lambda_powertools import Logger

from coupons.settlement_wiring import steps

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context) -> dict:
    return steps().plan(event["run_id"])
