"""The reconciliation state machine's steps (infra/constructs/reconciliation.py), by `step`:
start → match (→ match_bucket per hash bucket → settle, for a file not in id order) → compensate (a chunk per invocation, looped) → complete."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit

from coupons.observability import Event, count, metrics, tracer
from coupons.reconciliation_wiring import service

logger = Logger()
OVERDUE_METRIC, SUSPENSE_METRIC = "ReconciliationExceptionsOverdue", "ReconciliationSuspense"


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    step, reconciliation = event["step"], service()
    if step == "start":
        return reconciliation.start(bucket=event["bucket"], key=event["key"], version_id=event["version_id"],
                                    execution=event.get("execution"))  # fmt: skip
    if step == "match":
        return reconciliation.match(event["run_id"])
    if step == "match_bucket":  # a file not in id order: one hash bucket an invocation
        return reconciliation.match_bucket(event["run_id"], bucket=int(event["bucket"]))
    if step == "settle":
        return reconciliation.settle(event["run_id"])
    if step == "compensate":
        return reconciliation.compensate(event["run_id"], start=int(event["start"]), limit=int(event.get("limit", 50)))
    if step == "complete":
        done = reconciliation.complete(event["run_id"])
        count(Event.RECONCILIATION_COMPLETED)
        count(Event.RECONCILIATION_EXCEPTION_OPENED, len(done["opened"]))
        # Gauges the alarms watch (ReconciliationExceptionsOverdue, ReconciliationSuspense).
        metrics.add_metric(name=OVERDUE_METRIC, unit=MetricUnit.Count, value=done["watch"]["open_over_a_day"])
        metrics.add_metric(name=SUSPENSE_METRIC, unit=MetricUnit.Count, value=done["watch"]["suspense"])
        return done
    if step == "post_resolutions":  # every 5 minutes (ResolutionsSchedule) and at every complete
        return {"posted": reconciliation.post_resolutions()}
    raise ValueError(f"unknown step {step!r}")
