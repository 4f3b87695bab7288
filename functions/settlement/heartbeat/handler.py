"""Settlement heartbeat: fired by its schedule at the tenant's deadline (local time) on day X, it says
whether the daily run of X (scheduled at 02:00 on X, cut at X's start) is closed, as the metric SettlementOverdue (1 not closed, 0 closed);
the SettlementOverdue alarm watches it (docs/runbook.md)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit

from coupons.config import settings
from coupons.domain import settlement as rules
from coupons.observability import metrics, tracer
from coupons.settlement_wiring import store

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    day = event.get("business_date") or rules.scheduled_date(event["scheduled_at"], settings().time_zone)
    run = store().run(rules.run_id(day))
    status = run["status"] if run else None
    overdue = status != rules.RunStatus.CLOSED
    metrics.add_metric(name="SettlementOverdue", unit=MetricUnit.Count, value=1 if overdue else 0)
    if overdue:
        logger.error(
            "settlement run not closed by the deadline", extra={"business_date": day, "status": status}
        )
    return {"business_date": day, "status": status, "overdue": overdue}
