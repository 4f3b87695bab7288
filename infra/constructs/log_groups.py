"""Every log group of a tenant: kept when the stack goes (RETAIN), encrypted with the tenant's key (a log
line may carry a coupon code or a party's id), with a retention. Made here, in one place."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct


def tenant_log_group(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey,
    name: str | None = None,
    retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=retention,
        removal_policy=RemovalPolicy.RETAIN,
        encryption_key=key,
    )
