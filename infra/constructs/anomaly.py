"""The anomaly detector (docs/risk.md "Anomaly detection"): a consumer of the main table's stream (the
shared StreamConsumer wiring) keeping per merchant and per campaign a baseline of the redemption rate
and average discount; a burst holds the merchant's settlement for review."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from coupons.data.redemption_stream import OBSERVED, filter_patterns
from coupons.data.schema import MAIN
from infra.constructs.function import ServiceFunction
from infra.constructs.layers import Layers
from infra.constructs.stream_consumer import StreamConsumer
from infra.constructs.table_access import table_statements
from infra.tenants import Tenant


def redemption_filters() -> list[dict]:
    """Only new redemptions reach the detector: INSERTs, and holds captured in place (on AWS; the handler
    checks again with the same rule, coupons.data.redemption_stream)."""
    return [lambda_.FilterCriteria.filter(p) for p in filter_patterns(OBSERVED)]


class Anomalies(Construct):
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
        self.stream = StreamConsumer(
            self,
            table=table,
            key=key,
            dlq_reason="This queue is itself the dead-letter queue of the anomaly detector's stream mapping; "
            "a record given up is a redemption not counted in its baselines: nothing to replay for money "
            "(docs/risk.md).",
        )
        self.dead_letters = self.stream.dead_letters
        self.handler = ServiceFunction(
            self,
            "Handler",
            tenant=tenant,
            folder="anomaly",
            description="Risk: redemption bursts against each merchant's and campaign's baseline",
            layers=layers,
            key=key,
            statements=[
                # Its baselines and markers, a flag's hold and records (coupons.data.access: "anomaly").
                *table_statements(table, "anomaly"),
                *self.stream.reading(),
                self.stream.sending(),
            ],
            environment={MAIN.env_var: table.table_name},
            timeout_seconds=60,
            # One batch per stream shard anyway; set aside so an API flood cannot starve it.
            reserved_concurrency=tenant.clearing_reserved_concurrency,
        )
        self.function = self.handler.function
        self.mapping = self.stream.attach(self.function, filters=redemption_filters())
