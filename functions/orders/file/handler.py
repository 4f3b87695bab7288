"""S3 `Object Created` (through EventBridge) under order-files/ → the merchant's daily order file applied
(coupons.services.orders, as the merchant itself reported it), then its redemptions of the day and the
day before checked for an outcome (ORDER_OUTCOME_MISSING after the tenant's grace period). Applying
a file again changes nothing: every event is recorded once, every reversal under a derived key."""

from aws_lambda_powertools import Logger

from coupons.data.clients import s3
from coupons.domain.orders_file import parse, parse_key
from coupons.domain.principals import parse_principal
from coupons.observability import metrics, tracer
from coupons.orders_wiring import service

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    detail = event["detail"]
    bucket, key = detail["bucket"]["name"], detail["object"]["key"]
    version = detail["object"].get("version-id")
    merchant_id, day = parse_key(key)
    read = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version and version != "null" else {})}
    events = parse(
        s3().get_object(**read)["Body"].read().decode("utf-8"), merchant_id
    )  # whole, before any write
    orders = service()
    applied = orders.report(events, parse_principal(f"merchant:{merchant_id}"), source=key)
    missing = orders.check_outcomes(merchant_id, day)
    logger.info("order file", extra={"key": key, "events": len(applied), "missing": len(missing)})
    return {
        "events": len(applied),
        "new": sum(1 for a in applied if a["recorded"]),
        "missing_outcomes": len(missing),
    }
