"""Redemption holds (authorizations): the function that releases expired holds, fired every minute by an
EventBridge rule (docs/redemption.md "Holds"). Managed scheduling, not a loop of our own, and not DynamoDB
TTL (which deletes up to days late and gives nothing back): a hold is released within a minute of its
expiry, by a conditional transaction that runs once per hold whatever races it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from coupons.data.schema import MAIN
from infra.constructs.function import ServiceFunction
from infra.constructs.layers import Layers
from infra.constructs.table_access import table_statements
from infra.tenants import Tenant

KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
# A sweep stops starting releases after 45 s (functions/hold_expiry): the next minute's goes on.
TIMEOUT_SECONDS = 60
SWEEP_EVERY = Duration.minutes(1)


class Holds(Construct):
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
        self.expiry = ServiceFunction(
            self,
            "Expiry",
            tenant=tenant,
            folder="hold_expiry",
            description="Redemption holds: releases the holds whose time is up (every minute)",
            layers=layers,
            key=key,
            statements=[
                # Queries the live holds' index; writes holds, their coupons and history events only
                # (coupons.data.access: "holds.expiry").
                *table_statements(table, "holds.expiry"),
                iam.PolicyStatement(actions=KEY_ACTIONS, resources=[key.key_arn]),
            ],
            environment={MAIN.env_var: table.table_name},
            timeout_seconds=TIMEOUT_SECONDS,
            # One sweep at a time: overlapping sweeps would be safe (each release is conditional) but
            # only contend with each other.
            reserved_concurrency=1,
        )
        self.function = self.expiry.function
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Release the redemption holds whose time is up",
            schedule=events.Schedule.rate(SWEEP_EVERY),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
