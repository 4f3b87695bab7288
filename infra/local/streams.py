"""DynamoDB stream → Lambda delivery as Lambda's poller does it, in place of moto's (moto 5.2.5).

moto invokes a stream's event source mappings synchronously *inside the write* that made the record,
with every record of the shard not yet acknowledged. With a consumer that writes back to the same table
(clearing posts journals, postings, balances), that nests: each item of the consumer's
TransactWriteItems invokes the consumer again, with the record being processed still in the batch, and
the caller's DynamoDB request waits for all of it (the API's 5 s read timeout then retries a redemption
that went through: a 409 for a sale that succeeded). moto also emits the records of a transaction item
by item, before its conditions are all checked, and keeps them when it rolls the transaction back: a
lost race at the till would still reach clearing.

Here, as on AWS:
- a write only appends its records to the stream (a transaction's, once it commits; none if it fails);
- one poller per mapping delivers them after the write, in order, one batch at a time
  (ParallelizationFactor 1), at most BatchSize records, starting at TRIM_HORIZON or LATEST;
- MaximumBatchingWindowInSeconds is honoured: a batch is delivered once it is full (BatchSize) or
  once the window has passed since its first record was seen (within the idle wait, 1 s); the
  environment's LOCAL_STREAM_BATCHING_WINDOW_S caps it (tests shorten the deployed 60 s);
- FilterCriteria are applied (equality, prefix, exists, anything-but; a pattern using anything else is
  logged and not applied): records that match no filter are dropped without an invocation;
- a function error, or a `batchItemFailures` answer (ReportBatchItemFailures), is retried from the
  lowest failed record, bisecting a failed batch when BisectBatchOnFunctionError is set, until
  MaximumRetryAttempts or MaximumRecordAgeInSeconds; then the batch's description goes to the
  OnFailure destination (an SQS queue) in Lambda's format, and the poller moves past it.

DynamoDB requests are served one at a time (moto's transactions back up and restore whole tables, which
other requests running at the same time would corrupt or lose): nothing inside a request waits on a
Lambda invocation any more, so this cannot deadlock.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

log = logging.getLogger("local.streams")

# Between two retries of a failing batch: doubling from the first, capped (Lambda backs off too).
RETRY_BACKOFF_S = (0.2, 2.0)
# How long a poller sleeps when nothing is written (a write wakes it at once).
IDLE_WAIT_S = 1.0
# Caps every mapping's batching window locally (seconds; unset: the mapping's own).
WINDOW_CAP_ENV = "LOCAL_STREAM_BATCHING_WINDOW_S"


def batching_window(esm) -> float:
    """The mapping's MaximumBatchingWindowInSeconds, capped by WINDOW_CAP_ENV when that is set."""
    window = float(esm.max_batch_window or 0)
    cap = os.environ.get(WINDOW_CAP_ENV)
    return min(window, float(cap)) if cap else window


_MISSING = object()


class UnsupportedPattern(ValueError):
    pass


def record_matches(pattern: Any, value: Any) -> bool:
    """An event filter pattern (the subset Lambda's docs use for streams) against a stream record."""
    if isinstance(pattern, dict):
        return all(
            record_matches(sub, value.get(key, _MISSING) if isinstance(value, dict) else _MISSING)
            for key, sub in pattern.items()
        )
    if isinstance(pattern, list):
        return any(_leaf_matches(rule, value) for rule in pattern)
    raise UnsupportedPattern(f"a pattern's values are lists, not {pattern!r}")


def _leaf_matches(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if set(rule) == {"exists"}:
            return (value is not _MISSING) is bool(rule["exists"])
        if set(rule) == {"prefix"} and isinstance(rule["prefix"], str):
            return isinstance(value, str) and value.startswith(rule["prefix"])
        if set(rule) == {"numeric"}:
            return _numeric_matches(rule["numeric"], value)
        if set(rule) == {"anything-but"}:
            excluded = (
                rule["anything-but"] if isinstance(rule["anything-but"], list) else [rule["anything-but"]]
            )
            if any(isinstance(x, dict | list) for x in excluded):
                raise UnsupportedPattern(f"unsupported anything-but {rule!r}")
            return value is not _MISSING and not isinstance(value, dict | list) and value not in excluded
        raise UnsupportedPattern(f"unsupported filter rule {rule!r}")
    if isinstance(value, list):
        return rule in value
    return value is not _MISSING and not isinstance(value, dict) and value == rule


_COMPARE = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _numeric_matches(terms: Any, value: Any) -> bool:
    """`{"numeric": [op, n]}` or `[op, n, op, n]` (a range), as Lambda's filtering compares a stream
    image's number (its `N` string) with each bound."""
    if (
        not isinstance(terms, list)
        or len(terms) not in (2, 4)
        or any(terms[i] not in _COMPARE for i in range(0, len(terms), 2))
        or any(
            isinstance(terms[i], bool) or not isinstance(terms[i], int | float)
            for i in range(1, len(terms), 2)
        )
    ):
        raise UnsupportedPattern(f"unsupported numeric rule {terms!r}")
    if value is _MISSING or isinstance(value, bool | dict | list):
        return False
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return False
    return all(_COMPARE[terms[i]](number, Decimal(str(terms[i + 1]))) for i in range(0, len(terms), 2))


def compile_filters(filter_criteria: dict | None) -> list[dict] | None:
    """The mapping's patterns, or None when every record is delivered (no filters, or unsupported ones)."""
    filters = (filter_criteria or {}).get("Filters") or []
    if not filters:
        return None
    patterns = []
    for entry in filters:
        pattern = json.loads(entry["Pattern"])
        try:
            record_matches(pattern, {})
        except UnsupportedPattern as err:
            log.warning("filter %s is not supported locally (%s): every record is delivered", pattern, err)
            return None
        patterns.append(pattern)
    return patterns


class _Patches:
    """moto's stream append and transactions changed as the module docstring says; undone on close."""

    def __init__(self, notify):
        self._notify = notify
        self.lock = threading.RLock()
        self._pending = threading.local()
        self._saved: list[tuple[Any, str, Any]] = []

    def _patch(self, owner, name: str, value) -> None:
        self._saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, value)

    def install(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.models.table import StreamRecord, StreamShard
        from moto.dynamodb.responses import DynamoHandler

        patches = self
        original_transact = DynamoDBBackend.transact_write_items
        original_call = DynamoHandler.call_action

        def add(shard, old, new) -> None:
            view = shard.table.stream_specification["StreamViewType"]
            event_name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
            record = StreamRecord(shard.table, view, event_name, old, new, 0)
            pending = getattr(patches._pending, "records", None)
            if pending is not None:
                pending.append((shard, record))
            else:
                _append(shard, record)
                patches._notify()

        def _append(shard, record) -> None:
            record.record["dynamodb"]["SequenceNumber"] = str(
                len(shard.items) + shard.starting_sequence_number
            )
            shard.items.append(record)

        @functools.wraps(original_transact)
        def transact_write_items(backend, transact_items):
            # The records of a transaction's items are kept aside, and appended only once it commits.
            patches._pending.records = records = []
            try:
                original_transact(backend, transact_items)
            finally:
                patches._pending.records = None
            for shard, record in records:
                _append(shard, record)
            if records:
                patches._notify()

        def call_action(handler):
            with patches.lock:
                return original_call(handler)

        self._patch(StreamShard, "add", add)
        # A transaction's backup copy of a table shares its stream: the records are not copied on
        # every transaction, and a rolled-back transaction, which appended none, leaves it as it was.
        self._patch(StreamShard, "__deepcopy__", lambda shard, memo: shard)
        self._patch(DynamoDBBackend, "transact_write_items", transact_write_items)
        self._patch(DynamoHandler, "call_action", call_action)

    def uninstall(self) -> None:
        for owner, name, value in reversed(self._saved):
            if value is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, value)
        self._saved.clear()


class StreamDelivery:
    """Finds the DynamoDB stream mappings moto holds and runs a poller thread for each."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._generation = 0
        self._stop = threading.Event()
        self._pollers: dict[str, threading.Thread] = {}
        self._patches = _Patches(self.notify)
        self._thread: threading.Thread | None = None

    def notify(self) -> None:
        with self._wake:
            self._generation += 1
            self._wake.notify_all()

    def _wait(self, seen: int) -> int:
        with self._wake:
            if self._generation == seen and not self._stop.is_set():
                self._wake.wait(IDLE_WAIT_S)
            return self._generation

    def install(self) -> None:
        self._patches.install()
        self._thread = threading.Thread(target=self._discover, name="streams", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self.notify()
        threads = [t for t in (self._thread, *self._pollers.values()) if t is not None]
        for thread in threads:
            thread.join(timeout=5)
        self._patches.uninstall()

    # -- discovery ---------------------------------------------------------------------------

    def _discover(self) -> None:
        seen = -1
        while not self._stop.is_set():
            try:
                for esm_uuid, backend in _stream_mappings():
                    if esm_uuid not in self._pollers:
                        poller = _Poller(self, backend, esm_uuid)
                        thread = threading.Thread(
                            target=poller.run, name=f"stream-{esm_uuid[:8]}", daemon=True
                        )
                        self._pollers[esm_uuid] = thread
                        thread.start()
            except Exception:  # noqa: BLE001 - discovery must outlive a moto hiccup
                log.exception("stream mapping discovery failed")
            seen = self._wait(seen)

    def table_records(self, account: str, region: str, table_name: str, start: int, limit: int):
        """(records from index `start`, stream ARN, stream length) of a table's stream, read under the lock."""
        from moto.dynamodb.models import dynamodb_backends

        with self._patches.lock:
            table = dynamodb_backends[account][region].tables.get(table_name)
            shard = table.stream_shard if table is not None else None
            if shard is None:
                return [], 0
            return list(shard.items[start : start + limit]), len(shard.items)


def _stream_mappings():
    from moto.awslambda.models import lambda_backends

    for account_backends in list(lambda_backends.values()):
        for backend in list(account_backends.values()):
            for esm_uuid, esm in list(backend._event_source_mappings.items()):
                if ":dynamodb:" in esm.event_source_arn and "/stream/" in esm.event_source_arn:
                    yield esm_uuid, backend


class _Poller:
    """One mapping's shard iterator: delivers batches in order, retries, gives up to the destination."""

    def __init__(self, delivery: StreamDelivery, backend, esm_uuid: str):
        self.delivery = delivery
        self.backend = backend
        self.uuid = esm_uuid
        esm = self._esm()
        arn = esm.event_source_arn
        # arn:aws:dynamodb:{region}:{account}:table/{name}/stream/{label}
        _, _, _, self.region, self.account, resource = arn.split(":", 5)
        self.table_name = resource.split("/")[1]
        self.position = 0
        # The batch being gathered: its records, how many stream records past `position` were looked
        # at for it, and when its first record was seen (a batching window runs from then).
        self._batch: list[dict] = []
        self._scanned = 0
        self._window_opened: float | None = None
        if esm.starting_position == "LATEST":
            _, self.position = delivery.table_records(self.account, self.region, self.table_name, 0, 0)

    def _esm(self):
        return self.backend._event_source_mappings.get(self.uuid)

    def run(self) -> None:
        seen = -1
        while not self.delivery._stop.is_set():
            esm = self._esm()
            if esm is None:
                return  # the mapping was deleted
            try:
                if esm.enabled and self._deliver_one_batch(esm):
                    continue
            except Exception:  # noqa: BLE001 - a poller must outlive a moto hiccup
                log.exception("stream delivery to %s failed", esm.function_arn)
            seen = self.delivery._wait(seen)

    def _deliver_one_batch(self, esm) -> bool:
        """Delivers the next batch (and its retries); False if there is nothing new to deliver.

        The batch being gathered is kept across wakeups: while a batching window is open, each write
        only scans the records it added. Rescanning the whole backlog on every write, under moto's
        lock, is quadratic in the writes a window sees and starved a busy stack's API.
        """
        size = int(esm.batch_size or 100)
        filters = compile_filters(esm.filter_criteria)
        while len(self._batch) < size:
            records, _ = self.delivery.table_records(
                self.account, self.region, self.table_name,
                self.position + self._scanned, size - len(self._batch),
            )
            if not records:
                break
            self._scanned += len(records)
            for record in records:
                event_record = self._event_record(record.to_json(), esm.event_source_arn)
                if filters is None or any(record_matches(p, event_record) for p in filters):
                    self._batch.append(event_record)
        if self._scanned == 0:
            return False
        window = batching_window(esm)
        if self._batch and window > 0 and len(self._batch) < size:
            # Lambda gathers records until the batch is full or the window has passed.
            now = time.monotonic()
            if self._window_opened is None:
                self._window_opened = now
            if now - self._window_opened < window:
                return False
        if self._batch:
            self._with_retries(esm, self._batch)
        # Only once delivered (or given up): a moto hiccup above leaves the batch to be delivered again.
        self.position += self._scanned
        self._batch, self._scanned, self._window_opened = [], 0, None
        return True

    def _event_record(self, record: dict, source_arn: str) -> dict:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = int(
                created.replace(tzinfo=created.tzinfo or UTC).timestamp()
            )
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": dynamodb,
            "eventSourceARN": source_arn,
        }

    def _with_retries(self, esm, batch: list[dict]) -> None:
        """Delivers `batch` until every record went through or was given up, as Lambda does: a partial
        failure checkpoints before the lowest failed record and retries the rest of that invocation's
        records; a function error bisects them (BisectBatchOnFunctionError; a split is not a retry)."""
        reports = "ReportBatchItemFailures" in (esm.function_response_types or [])
        max_retries = -1 if esm.max_retry_attempts is None else int(esm.max_retry_attempts)
        max_age = -1 if esm.max_record_age is None else int(esm.max_record_age)
        queue, size, attempts = batch, len(batch), 0
        while queue:
            part = queue[:size]
            failed_from, errored = self._invoke(esm, part, reports)
            if failed_from is None:
                queue, attempts = queue[len(part) :], 0
                size = len(queue)
                continue
            queue, size = queue[failed_from:], len(part) - failed_from
            if errored and esm.bisect_on_error and size > 1:
                size //= 2
                continue
            attempts += 1
            age = time.time() - queue[0]["dynamodb"].get("ApproximateCreationDateTime", time.time())
            too_old = max_age != -1 and age > max_age
            if too_old or (max_retries != -1 and attempts > max_retries):
                self._give_up(
                    esm, queue[:size], attempts, "RecordAgeExceeded" if too_old else "RetryAttemptsExhausted"
                )
                queue, attempts = queue[size:], 0
                size = len(queue)
                continue
            if self.delivery._stop.wait(min(RETRY_BACKOFF_S[0] * 2 ** (attempts - 1), RETRY_BACKOFF_S[1])):
                return

    def _invoke(self, esm, records: list[dict], reports: bool) -> tuple[int | None, bool]:
        """(index of the first record to retry, or None if all went through; whether the function failed)."""
        function = self.backend.get_function(esm.function_arn)
        headers: dict[str, str] = {}
        output = function.invoke(json.dumps({"Records": records}), {}, headers)
        if "x-amz-function-error" in headers:
            return 0, True
        if not reports:
            return None, False
        try:
            answer = json.loads(output) if output else None
        except (TypeError, ValueError):
            return 0, True
        failures = (answer or {}).get("batchItemFailures") if isinstance(answer, dict) else None
        if not failures:
            return None, False
        sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
        indexes = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if identifier not in sequence:
                return 0, False  # an empty or unknown identifier fails the whole batch, as on AWS
            indexes.append(sequence.index(identifier))
        return min(indexes), False

    def _give_up(self, esm, records: list[dict], attempts: int, condition: str) -> None:
        log.warning(
            "%s: giving up %d stream record(s) after %d attempt(s) (%s)",
            esm.function_arn, len(records), attempts, condition,
        )  # fmt: skip
        destination = ((esm.destination_config or {}).get("OnFailure") or {}).get("Destination")
        if not destination or ":sqs:" not in destination:
            return
        from moto.sqs.models import sqs_backends

        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": esm.function_arn,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": "shardId-00000001541626099285-f35f62ef",
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime")),
                "batchSize": len(records),
                "streamArn": esm.event_source_arn,
            },
        }
        _, _, _, region, account, queue_name = destination.split(":", 5)
        try:
            sqs_backends[account][region].send_message(queue_name, json.dumps(message))
        except Exception:  # noqa: BLE001 - a missing queue must not stop the stream
            log.exception("could not send to the on-failure destination %s", destination)


def _iso(epoch) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
