"""The statements bucket (settlement statements and channel files) and the bucket its access logs go to."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        # S3 delivers server access logs only to a bucket encrypted with S3-managed keys, not KMS.
        # It keeps no access log of its own: logging a log bucket would only move the question.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(400), noncurrent_version_expiration=Duration.days(30)
                )
            ],
        )
        # Statements are what finance pays and reconciles against: versioned (an overwrite never
        # loses the paid version), encrypted with the tenant's key, and retained with the stack gone.
        self.statements = s3.Bucket(
            self,
            "Statements",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="statements/",
        )
        # Object Created → EventBridge: a channel statement file's arrival starts its reconciliation
        # (infra/constructs/reconciliation.py), once per version. Set on the CloudFormation bucket itself:
        # `event_bridge_enabled=True` would add CDK's notifications custom resource (a Lambda of its own).
        self.statements.node.default_child.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
