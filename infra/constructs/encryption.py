"""The tenant's data key: one customer-managed KMS key for everything the tenant stores."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class DataKey(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, tenant_name: str) -> None:
        super().__init__(scope, construct_id)
        # Per tenant, so one tenant's data can be cut off (or audited) without touching another's.
        # Retained: deleting the key would make retained tables, backups and statements unreadable.
        self.key = kms.Key(
            self,
            "Key",
            description=f"Coupon clearing data of tenant {tenant_name}: tables, statements, tenant secret",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Every log group of the tenant is encrypted with this key (function logs, access logs, the state
        # machine's): CloudWatch Logs may use it for log groups of this account and region only.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                    }
                },
            )
        )
