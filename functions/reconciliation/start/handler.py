"""S3 `Object Created` (through EventBridge) under channel-statements/ → one execution of the
reconciliation state machine per file version, named from the key and its version id: a second
delivery of the same version finds the execution there and starts nothing."""

import json

from aws_lambda_powertools import Logger

from coupons.observability import metrics, tracer
from coupons.reconciliation_wiring import start_execution
from coupons.services.reconciliation import execution_name_of

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    detail = event["detail"]
    key, version_id = detail["object"]["key"], detail["object"].get("version-id") or ""
    version_id = "" if version_id == "null" else version_id  # an unversioned bucket's objects
    name = execution_name_of(key, version_id)
    payload = {"bucket": detail["bucket"]["name"], "key": key, "version_id": version_id}
    started = start_execution(name, json.dumps(payload))
    logger.info("reconciliation", extra={"execution": name, "started": started, "key": key})
    return {"execution": name, "started": started}
