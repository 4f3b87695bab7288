"""Anomaly detector function: the main table's stream → each redemption counted once in its merchant's
and its campaign's baselines; a burst beyond a merchant's holds its settlement for review
(coupons.services.anomaly). Records that are not redemption INSERTs are skipped (the mapping filters
them out on AWS; a local or replayed stream may still carry them)."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from coupons.config import settings
from coupons.data.anomaly import AnomalyStore
from coupons.data.clients import dynamodb
from coupons.data.models.base import plain_image
from coupons.data.redemption_stream import OBSERVED, new_source
from coupons.observability import metrics, tracer
from coupons.services.anomaly import Detector

logger = Logger()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


@cache
def detector() -> Detector:
    return Detector(AnomalyStore(dynamodb(), settings().main_table))


def record_handler(record: DynamoDBRecord) -> str:
    # A new redemption: its INSERT, or a hold captured in place (the same rule as the filter).
    image = new_source(record.raw_event, OBSERVED)
    if image is None:
        return "skipped"
    redemption = plain_image(image)
    outcome = detector().observe(redemption)
    if outcome == "flagged":
        logger.warning("anomaly flagged", extra={"redemption_id": redemption["redemption_id"]})
    metrics.add_metric(name=f"Anomaly{outcome.capitalize()}", unit=MetricUnit.Count, value=1)
    return outcome


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
