"""Clearing (清分): the function that turns the main table's redemption and reversal records into journals,
fed by an event source mapping on the table's stream, with a dead-letter queue for what it cannot post."""

from __future__ import annotations

import jsii
from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from coupons.data.schema import MAIN
from infra.constructs.function import ServiceFunction, calendar_environment
from infra.constructs.layers import Layers
from infra.constructs.table_access import table_statements
from infra.tenants import Tenant

# The stream records clearing posts (the `kind` of the item a redemption or a reversal inserts).
CLEARED_KINDS = ("REDEMPTION", "REVERSAL")

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
TIMEOUT_SECONDS = 60


@jsii.implements(lambda_.IEventSourceDlq)
class _QueueDestination:
    """The DLQ as the mapping's on-failure destination, granting nothing: the role's statements
    below say what the function may do with it (lambda_event_sources.SqsDlq would add a second
    policy with sqs:GetQueue* and kms:ReEncrypt* / GenerateDataKey* wildcards)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self, _target: lambda_.IEventSourceMapping, _handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self._queue.queue_arn)


def record_filter() -> dict:
    """Only INSERTs of redemption and reversal items reach the function (on AWS; the handler checks again)."""
    return lambda_.FilterCriteria.filter(
        {
            "eventName": lambda_.FilterRule.is_equal("INSERT"),
            "dynamodb": {"NewImage": {"kind": {"S": lambda_.FilterRule.or_(*CLEARED_KINDS)}}},
        }
    )


class Clearing(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tenant: Tenant,
        layers: Layers,
        table: dynamodb.Table,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        if table.table_stream_arn is None:
            raise ValueError("clearing reads the main table's stream: the table must have one")

        # Holds only pointers to the failed records (shard, sequence numbers), not their data; still
        # encrypted with the tenant's key like everything else of the tenant, and retained: what is in
        # it is journals not posted yet.
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            data_key_reuse=Duration.minutes(5),
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(self.dead_letters).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is itself a dead-letter queue: the on-failure destination of the clearing "
                "event source mapping, which cdk-nag does not recognise as a DLQ use; its messages point at "
                "stream records that age out in 24 h, so the remedy is a re-clear of what is still pending "
                '(docs/runbook.md, section "Re-clear"), never a consumer that could fail again.',
            )
        )

        self.handler = ServiceFunction(
            self,
            "Handler",
            tenant=tenant,
            folder="clearing",
            description="Coupon clearing: stream records to journals",
            layers=layers,
            key=key,
            statements=[
                # Reads journals and funding rules; posts a journal, its postings and balances and takes
                # its source out of the clearing-pending index, in one TransactWriteItems: only those
                # items (coupons.data.access: "clearing").
                *table_statements(table, "clearing"),
                iam.PolicyStatement(actions=STREAM_ACTIONS, resources=[table.table_stream_arn]),
                iam.PolicyStatement(actions=KEY_ACTIONS, resources=[key.key_arn]),
                iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn]),
            ],
            environment={MAIN.env_var: table.table_name, **calendar_environment(tenant)},
            timeout_seconds=TIMEOUT_SECONDS,
            # Set aside (and capped): an API flood of any tenant cannot starve clearing, and clearing
            # cannot take more than one batch per shard anyway (parallelization 1).
            reserved_concurrency=tenant.clearing_reserved_concurrency,
        )
        self.function = self.handler.function

        # The role's statements are inline in the role, which the function depends on: the mapping
        # (which depends on the function) is created only once the role may read the stream.
        self.mapping = lambda_.EventSourceMapping(
            self,
            "StreamMapping",
            target=self.function,
            event_source_arn=table.table_stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=BATCH_SIZE,
            # The handler reports each failed record; Lambda retries from the lowest failed one.
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            retry_attempts=RETRY_ATTEMPTS,
            max_record_age=MAX_RECORD_AGE,
            # One batch per shard at a time: records of a shard (one item's history) stay in order.
            parallelization_factor=1,
            filters=[record_filter()],
            on_failure=_QueueDestination(self.dead_letters),
        )
