"""Settlement step 5 (per batch of parties): net each party and send its payout or collection."""

from aws_lambda_powertools import Logger

from coupons.settlement_wiring import steps

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context) -> dict:
    return steps().pay(event["run_id"], event["business_date"], event["parties"])
