"""Instant payouts: the main table's stream (merchants' redemption postings, through a batching window)
→ one payout per INSTANT party of the batch (coupons.services.instant).

The event source mapping filters the records on AWS; a local or replayed stream may carry others, so
the handler takes only INSERTs of merchants' postings. A party whose payout failed has its records
reported in `batchItemFailures`: Lambda delivers them again (what was paid is skipped), and after the
payout's attempts its postings are left to the next scheduled run. The threshold mapping's records (a
party's pending total of a window reaching its threshold) are each a flush of that party's window.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit

from coupons.instant_wiring import crossing_of, payouts, posting_of
from coupons.observability import metrics, tracer

logger = Logger()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    records = event.get("Records") or []
    postings, crossings = {}, {}
    for record in records:
        posting = posting_of(record)
        if posting is not None:
            postings[record["dynamodb"]["SequenceNumber"]] = posting
        crossing = crossing_of(record)
        if crossing is not None:
            crossings[record["dynamodb"]["SequenceNumber"]] = crossing
    failed = []
    # The threshold mapping's records: each a party's window to pay now.
    for seq, crossing in crossings.items():
        if payouts().flush(crossing).failed:
            failed.append(seq)
    outcome = payouts().process(list(postings.values()), delivered_at=datetime.now(UTC))
    if outcome.failed or failed:
        logger.warning(
            "instant payouts to retry", extra={"parties": outcome.failed, "crossings": len(failed)}
        )
    failed += [seq for seq, posting in postings.items() if posting["account"] in set(outcome.failed)]
    metrics.add_metric(name="InstantPayoutsRetried", unit=MetricUnit.Count, value=len(outcome.failed))
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}
