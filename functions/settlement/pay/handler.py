"""Settlement step 5 (per batch of parties): net each party and send its payout or collection."""

from aws_lambda_powertools import Logger

from coupons.observability import Event, count, metrics, tracer
from coupons.settlement_wiring import steps

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    paid = steps().pay(event["run_id"], event["business_date"], event["parties"])
    count(Event.PAYOUT_SENT, paid["sent"])
    return paid
