"""Clearing function: the main table's stream → one journal per redemption / reversal record.

Each record is processed on its own (powertools BatchProcessor): a record that fails is reported in
`batchItemFailures` and retried (then sent to the DLQ) without failing the others. Records that are
not redemptions or reversals are skipped: the event source mapping filters them out on AWS, but a
local or replayed stream may still carry them.
"""

from __future__ import annotations

import os
from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from coupons.config import settings
from coupons.data.clients import dynamodb
from coupons.data.commission import CommissionStore
from coupons.data.instant_pending import InstantPending
from coupons.data.ledger import LedgerStore
from coupons.data.models.base import plain_image
from coupons.data.redemption_stream import CLEARED, new_source
from coupons.domain import calendars
from coupons.observability import Event, count, metrics, tracer
from coupons.services.clearing import Clearer
from coupons.services.instant import INSTANT_SETTLEMENT, parse_terms
from coupons.services.instant_pending import PendingCounter

logger = Logger()
# A batch whose records all failed is reported like any other (every record listed), not raised:
# Lambda then retries from the lowest failed record either way, and the metrics still get flushed.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)

@cache
def clearer() -> Clearer:
    return Clearer(
        LedgerStore(dynamodb(), settings().main_table),
        calendar=calendars.from_environment(settings().holiday_calendar),
        commission=CommissionStore(dynamodb(), settings().main_table),
        pending=pending_counter(),
    )


def pending_counter() -> PendingCounter | None:
    """The instant threshold's counting, on a tenant with a `flush_threshold` (its INSTANT_SETTLEMENT is
    set on this function only then: docs/instant.md, "The threshold flush")."""
    terms = parse_terms(os.environ.get(INSTANT_SETTLEMENT))
    if not terms.thresholds:
        return None
    return PendingCounter(InstantPending(dynamodb(), settings().main_table), terms)


def record_handler(record: DynamoDBRecord) -> str:
    raw = record.raw_event
    # A new redemption or reversal: its INSERT, or a hold captured in place (the same rule as the filter).
    image = new_source(raw, CLEARED)
    if image is None:
        return "skipped"
    # A redemption's or a reversal's image: plain values (numbers int), whichever of the two it is.
    source = plain_image(image)
    try:
        outcome = clearer().clear(source)
    except Exception:
        metrics.add_metric(name="ClearingRecordFailed", unit=MetricUnit.Count, value=1)
        logger.exception(
            "clearing failed", extra={"source_kind": source.get("kind"), "source": raw.get("eventID")}
        )
        raise
    metrics.add_metric(name=f"Clearing{outcome.capitalize()}", unit=MetricUnit.Count, value=1)
    if outcome == "posted":
        count(Event.JOURNAL_POSTED)
    return outcome


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    answer = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    # Records of this batch that Lambda will deliver again (then give up to the dead-letter queue).
    metrics.add_metric(
        name="ClearingRecordsPending", unit=MetricUnit.Count, value=len(answer["batchItemFailures"])
    )
    return answer
