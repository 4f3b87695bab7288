"""What every consumer of the main table's stream is wired with (clearing, the audit log, the anomaly
detector): its dead-letter queue, the role's statements to read the stream, the event source mapping
(filter, batch, retries, bisect, one batch per shard, the DLQ on failure), and its alarms.

`StreamConsumer` builds into its owner's scope, not as a construct level of its own: the resources keep
their owners' logical ids (Clearing/DeadLetters, Audit/StreamMapping), so a consumer moved onto it
synthesizes the same template."""

from __future__ import annotations

import jsii
from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# What Lambda's poller calls on the stream with the function's role.
STREAM_ACTIONS = [
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
]
# The data key encrypts the table (so its stream) and the dead-letter queue: reading either decrypts,
# writing either encrypts under a fresh data key.
KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]

BATCH_SIZE = 100
# A record still failing after this many retries (each bisecting the batch further) goes to the DLQ.
RETRY_ATTEMPTS = 5
# ... as does one older than this: the stream keeps records for 24 h, so nothing waits longer anyway.
MAX_RECORD_AGE = Duration.hours(24)
# SQS's longest: an operator has two weeks to replay what landed there.
DLQ_RETENTION = Duration.days(14)


@jsii.implements(lambda_.IEventSourceDlq)
class _QueueDestination:
    """The DLQ as the mapping's on-failure destination, granting nothing: the role's statements
    (`StreamConsumer.statements`) say what the function may do with it (lambda_event_sources.SqsDlq
    would add a second policy with sqs:GetQueue* and kms:ReEncrypt* / GenerateDataKey* wildcards)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self, _target: lambda_.IEventSourceMapping, _handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self._queue.queue_arn)


class StreamConsumer:
    """One consumer's stream wiring, in `scope`: first the DLQ (`dead_letters`), then, once the function
    exists, `attach` (the mapping). `reading` and `sending` are the role's statements."""

    def __init__(
        self,
        scope: Construct,
        *,
        table: dynamodb.Table,
        key: kms.IKey,
        dlq_reason: str,
        dlq_id: str = "DeadLetters",
    ) -> None:
        if table.table_stream_arn is None:
            raise ValueError(f"{scope.node.id} reads the main table's stream: the table must have one")
        self._scope = scope
        self._table = table
        self._key = key
        # Holds only pointers to the failed records (shard, sequence numbers), not their data; still
        # encrypted with the tenant's key like everything else of the tenant, and retained.
        self.dead_letters = sqs.Queue(
            scope,
            dlq_id,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            data_key_reuse=Duration.minutes(5),
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(self.dead_letters).acknowledge(
            Acknowledgment(id="AwsSolutions-SQS3", reason=dlq_reason)
        )
        self.mapping: lambda_.EventSourceMapping | None = None

    def reading(self) -> list[iam.PolicyStatement]:
        """The stream's reads and the data key's use (the stream and the DLQ are under it)."""
        return [
            iam.PolicyStatement(actions=STREAM_ACTIONS, resources=[self._table.table_stream_arn]),
            iam.PolicyStatement(actions=KEY_ACTIONS, resources=[self._key.key_arn]),
        ]

    def sending(self) -> iam.PolicyStatement:
        """Lambda's poller sends a failed batch's description to the DLQ as the function's role."""
        return iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn])

    def attach(
        self,
        function: lambda_.IFunction,
        *,
        filters: list[dict],
        mapping_id: str = "StreamMapping",
        batch_size: int = BATCH_SIZE,
        batching_window: Duration | None = None,
    ) -> lambda_.EventSourceMapping:
        """`batching_window`: Lambda gathers records this long (or until `batch_size`) before invoking
        (instant payouts' micro-batches); None: at once, as clearing wants."""
        # The role's statements are inline in the role, which the function depends on: the mapping
        # (which depends on the function) is created only once the role may read the stream.
        self.mapping = lambda_.EventSourceMapping(
            self._scope,
            mapping_id,
            target=function,
            event_source_arn=self._table.table_stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=batch_size,
            max_batching_window=batching_window,
            # The handler reports each failed record; Lambda retries from the lowest failed one.
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            retry_attempts=RETRY_ATTEMPTS,
            max_record_age=MAX_RECORD_AGE,
            # One batch per shard at a time: records of a shard (one item's history) stay in order.
            parallelization_factor=1,
            filters=filters,
            on_failure=_QueueDestination(self.dead_letters),
        )
        return self.mapping


def watch(monitoring, prefix: str, function: lambda_.IFunction, dead_letters: sqs.IQueue) -> None:
    """A stream consumer's alarms: its errors and throttles, its lag behind the stream, its DLQ."""
    monitoring.watch_function(prefix, function)
    monitoring.watch_stream_lag(prefix, function)
    monitoring.watch_dead_letters(prefix, dead_letters)


__all__ = ["BATCH_SIZE", "KEY_ACTIONS", "RETRY_ATTEMPTS", "STREAM_ACTIONS", "StreamConsumer", "watch"]
