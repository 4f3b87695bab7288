"""Clearing (清分): the function that turns the main table's redemption and reversal records into journals,
fed by an event source mapping on the table's stream, with a dead-letter queue for what it cannot post."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from coupons.data.redemption_stream import CLEARED, filter_patterns
from coupons.data.schema import MAIN
from infra.constructs.function import ServiceFunction, calendar_environment
from infra.constructs.instant import flush_environment
from infra.constructs.layers import Layers
from infra.constructs.stream_consumer import StreamConsumer
from infra.constructs.table_access import table_statements
from infra.tenants import Tenant

TIMEOUT_SECONDS = 60


def record_filters() -> list[dict]:
    """Only new redemptions and reversals reach the function: INSERTs, and holds captured in place (on AWS;
    the handler checks again with the same rule, coupons.data.redemption_stream)."""
    return [lambda_.FilterCriteria.filter(p) for p in filter_patterns(CLEARED)]


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
        # The DLQ holds what is journals not posted yet: the remedy is a re-clear, never a consumer.
        self.stream = StreamConsumer(
            self,
            table=table,
            key=key,
            dlq_reason="This queue is itself a dead-letter queue: the on-failure destination of the clearing "
            "event source mapping, which cdk-nag does not recognise as a DLQ use; its messages point at "
            "stream records that age out in 24 h, so the remedy is a re-clear of what is still pending "
            '(docs/runbook.md, section "Re-clear"), never a consumer that could fail again.',
        )
        self.dead_letters = self.stream.dead_letters

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
                *self.stream.reading(),
                self.stream.sending(),
            ],
            environment={
                MAIN.env_var: table.table_name,
                **calendar_environment(tenant),
                **flush_environment(tenant),  # the instant threshold: clearing counts postings toward it
            },
            timeout_seconds=TIMEOUT_SECONDS,
            # Set aside (and capped): an API flood of any tenant cannot starve clearing, and clearing
            # cannot take more than one batch per shard anyway (parallelization 1).
            reserved_concurrency=tenant.clearing_reserved_concurrency,
        )
        self.function = self.handler.function

        self.mapping = self.stream.attach(self.function, filters=record_filters())
