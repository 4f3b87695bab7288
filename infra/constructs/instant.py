"""Instant settlement (即时到账, docs/instant.md): the payout function, fed by the main table's stream
through a filter (INSERTs of merchants' redemption postings) and a batching window (the tenant's, at
most 60 s): each invocation is one micro-batch, paid per party through the payment channel."""

from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from coupons.data.models.instant import PENDING, PENDING_TOTAL_SK
from coupons.data.schema import BANK, MAIN
from coupons.services.instant import EVENT_SOURCE, INSTANT_SETTLEMENT
from coupons.settlement_wiring import CHANNEL_FEES
from infra.constructs.function import ServiceFunction
from infra.constructs.layers import Layers
from infra.constructs.stream_consumer import StreamConsumer
from infra.constructs.table_access import table_statements
from infra.tenants import Tenant

TIMEOUT_SECONDS = 120
POSTINGS_PREFIX = "ENTRIES#merchant:"  # a merchant's posting partitions (coupons.data.models.ledger)


def posting_filter() -> dict:
    """Only a merchant's new redemption postings reach the function (on AWS; the handler checks again)."""
    return lambda_.FilterCriteria.filter(
        {
            "eventName": lambda_.FilterRule.is_equal("INSERT"),
            "dynamodb": {
                "Keys": {"pk": {"S": lambda_.FilterRule.begins_with(POSTINGS_PREFIX)}},
                "NewImage": {"source_kind": {"S": lambda_.FilterRule.is_equal("REDEMPTION")}},
            },
        }
    )


def terms_environment(tenant: Tenant) -> str:
    assert tenant.instant_settlement is not None
    terms = tenant.instant_settlement.model_dump(mode="json")
    if not terms["flush_threshold"]:
        del terms["flush_threshold"]  # none: the environment as before the flush existed
    return json.dumps(terms, sort_keys=True, separators=(",", ":"))


def flush_environment(tenant: Tenant) -> dict[str, str]:
    """Clearing's: the instant terms on a tenant with a flush threshold (clearing then counts each
    merchant's redemption posting); nothing otherwise, so clearing is unchanged there."""
    terms = tenant.instant_settlement
    return instant_environment(tenant) if terms is not None and terms.flush_threshold else {}


def crossing_filters() -> list[dict]:
    """Only the record where a party's pending total of a window reaches its threshold: `remaining`
    (threshold − amount) at 0 or below in the new image, and above 0 in the old one (or no old one: the
    window's first posting reached it alone). DynamoDB event filtering compares numbers on both images."""
    total = {"Keys": {"pk": {"S": [{"prefix": PENDING}]}, "sk": {"S": [PENDING_TOTAL_SK]}}}
    reached = {"remaining": {"N": [{"numeric": ["<=", 0]}]}}
    return [
        lambda_.FilterCriteria.filter({"eventName": ["INSERT"], "dynamodb": {**total, "NewImage": reached}}),
        lambda_.FilterCriteria.filter(
            {
                "eventName": ["MODIFY"],
                "dynamodb": {
                    **total,
                    "OldImage": {"remaining": {"N": [{"numeric": [">", 0]}]}},
                    "NewImage": reached,
                },
            }
        ),
    ]


def instant_environment(tenant: Tenant) -> dict[str, str]:
    """The tenant's instant terms for the functions that read them; nothing for a tenant without."""
    return {INSTANT_SETTLEMENT: terms_environment(tenant)} if tenant.instant_settlement else {}


class InstantPayouts(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tenant: Tenant,
        layers: Layers,
        table: dynamodb.Table,
        key: kms.IKey,
        bank: dynamodb.ITable | None,
    ) -> None:
        super().__init__(scope, construct_id)
        terms = tenant.instant_settlement
        assert terms is not None
        self.stream = StreamConsumer(
            self,
            table=table,
            key=key,
            dlq_reason="This queue is itself the dead-letter queue of the instant payout stream mapping; a "
            "batch given up is postings claimed by a payout that could not finish nor be given back (the "
            "channel could not say whether it holds the transfer): docs/runbook.md, section "
            '"Instant payouts", never a consumer that could pay twice.',
        )
        self.dead_letters = self.stream.dead_letters
        statements = [
            # Its own one-party runs, the postings it claims / settles / gives back, the transfer journal,
            # the statement line (coupons.data.access: "instant").
            *table_statements(table, "instant"),
            *self.stream.reading(),
            self.stream.sending(),
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[f"arn:aws:events:{table.stack.region}:{table.stack.account}:event-bus/default"],
                conditions={"StringEquals": {"events:source": EVENT_SOURCE}},
            ),
        ]
        environment = {
            MAIN.env_var: table.table_name,
            **instant_environment(tenant),
            "PAYMENT_CHANNEL": tenant.payment_channel,
            CHANNEL_FEES: json.dumps(
                {c: f.model_dump(mode="json") for c, f in tenant.channel_fees.items()}, sort_keys=True
            ),
        }
        if bank is not None:
            environment[BANK.env_var] = bank.table_name
            statements.append(
                iam.PolicyStatement(
                    actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                    resources=[bank.table_arn],
                )
            )
        self.handler = ServiceFunction(
            self,
            "Handler",
            tenant=tenant,
            folder="instant",
            description="Instant settlement: merchants' cleared postings paid in micro-batches",
            layers=layers,
            key=key,
            statements=statements,
            environment=environment,
            timeout_seconds=TIMEOUT_SECONDS,
            reserved_concurrency=tenant.settlement_reserved_concurrency,
        )
        self.function = self.handler.function
        self.mapping = self.stream.attach(
            self.function,
            filters=[posting_filter()],
            batch_size=terms.batch_size,
            batching_window=Duration.seconds(terms.window_seconds),
        )
        # The threshold flush: a second reader of the stream, without a window (a crossing is paid at
        # once), on a tenant with a flush threshold only. Its failures share the DLQ and its alarm.
        self.threshold_mapping = None
        if terms.flush_threshold:
            self.threshold_mapping = self.stream.attach(
                self.function, filters=crossing_filters(), mapping_id="ThresholdMapping"
            )
            self.stream.mapping = self.mapping
