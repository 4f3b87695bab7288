"""Audit function: the main table's stream (every committed change) and the API's audit queue (every
API call) → entries of the audit log (coupons.services.audit), each source record exactly once.

Not powertools' BatchProcessor, on purpose: a log is in order, so records are appended per shard in
stream order, many to one transaction (one head update a chunk, not a record), and a record that fails
fails every later record of its shard too (never appended before it). The answer is the same partial
batch response (`batchItemFailures`): Lambda delivers again from the lowest failed record, and what was
already appended is recognised by its source reference and skipped.

Records of audit items themselves (they carry `audit_log`) are skipped: the mapping's filter drops them
on AWS; a local or replayed stream may still carry them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from coupons.config import settings
from coupons.data.audit import AuditStore
from coupons.data.clients import dynamodb
from coupons.data.models.audit import MARKER
from coupons.observability import metrics, tracer
from coupons.services import audit as service

logger = Logger()


@cache
def auditor() -> service.Auditor:
    return service.Auditor(AuditStore(dynamodb(), settings().main_table, tenant=settings().tenant))


def shards() -> int:
    return settings().audit_log_shards


def _change(raw: dict) -> service.Pending | None:
    record = DynamoDBRecord(raw)
    stream = record.dynamodb
    old, new = stream.old_image or None, stream.new_image or None
    if MARKER in (new or {}) or MARKER in (old or {}):
        return None
    at = stream.approximate_creation_date_time
    identity = raw.get("userIdentity") or {}
    return service.change(
        event_id=raw["eventID"],
        event_name=raw["eventName"],
        old=old,
        new=new,
        at=datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC),
        shards=shards(),
        by_service=identity.get("principalId") == "dynamodb.amazonaws.com",
    )


def _shard_key(raw: dict) -> int:
    keys = (raw.get("dynamodb") or {}).get("Keys") or {}
    return service.shard_of(str((keys.get("pk") or {}).get("S", "")), shards())


def _append_in_order(items: list[tuple[str, int, object]]) -> list[str]:
    """items: (identifier, shard, Pending | None to skip | Exception); the identifiers that failed."""
    failed: list[str] = []
    by_shard: dict[int, list[tuple[str, object]]] = {}
    for identifier, shard, pending in items:
        by_shard.setdefault(shard, []).append((identifier, pending))
    for shard, queue in by_shard.items():
        ready = []
        for index, (identifier, pending) in enumerate(queue):
            if isinstance(pending, Exception):
                # A record that cannot become an entry stops its shard: nothing after it is appended first.
                logger.error("audit record refused", extra={"record": identifier, "error": str(pending)})
                failed += [i for i, _ in queue[index:]]
                queue = queue[:index]
                break
            if pending is not None:
                ready.append((identifier, pending))
        if not ready:
            continue
        try:
            appended, duplicates = auditor().append([p for _, p in ready])
        except Exception:
            logger.exception("audit append failed", extra={"shard": shard})
            failed += [i for i, _ in ready]
            continue
        metrics.add_metric(name="AuditEntriesAppended", unit=MetricUnit.Count, value=appended)
        if duplicates:
            metrics.add_metric(name="AuditDuplicatesSkipped", unit=MetricUnit.Count, value=duplicates)
    return failed


def _stream(records: list[dict]) -> list[str]:
    items = []
    for raw in records:
        identifier = (raw.get("dynamodb") or {}).get("SequenceNumber", "")
        try:
            pending: object = _change(raw)
        except Exception as error:  # noqa: BLE001 - a poison record fails alone (and its shard's later ones)
            pending = error
        items.append(
            (
                identifier,
                _shard_key(raw) if not isinstance(pending, service.Pending) else pending.shard,
                pending,
            )
        )
    return _append_in_order(items)


def _queue(records: list[dict]) -> list[str]:
    items = []
    for raw in records:
        identifier = raw.get("messageId", "")
        try:
            pending: object = service.api_call(json.loads(raw["body"]), shards=shards())
            shard = pending.shard
        except Exception as error:  # noqa: BLE001
            pending, shard = error, -1
        items.append((identifier, shard, pending))
    return _append_in_order(items)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    records = event.get("Records") or []
    from_queue = bool(records) and records[0].get("eventSource") == "aws:sqs"
    failed = _queue(records) if from_queue else _stream(records)
    metrics.add_metric(name="AuditRecordsPending", unit=MetricUnit.Count, value=len(failed))
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
