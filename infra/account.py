"""The account stack: what API Gateway (and any later service) keeps once per account and region, shared
by every tenant of it. Deployed once per account and region, before any tenant stack (which depends on it).

API Gateway writes a stage's access and execution logs with the account's CloudWatch role: where none
was ever set, a stage with logging fails to create. One tenant's stack must not own it (deleting that
tenant would break every other tenant's stage), so it lives here.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam
from constructs import Construct

# No dash after the product name: a tenant may be called "account" (CouponClearing-account).
ACCOUNT_STACK_NAME = "CouponClearingAccount"
PUSH_TO_CLOUDWATCH = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


class AccountStack(Stack):
    def __init__(self, scope: Construct, **kwargs: Any) -> None:
        super().__init__(
            scope,
            ACCOUNT_STACK_NAME,
            stack_name=ACCOUNT_STACK_NAME,
            description="Coupon clearing: per account and region settings shared by every tenant stack",
            termination_protection=True,
            tags={"product": "coupon-clearing"},
            **kwargs,
        )
        role = iam.Role(
            self,
            "ApiGatewayCloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway writes stage access and execution logs to CloudWatch Logs",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(PUSH_TO_CLOUDWATCH)],
        )
        account = apigateway.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
        # The setting outlives the stack: another deployment (or tenant) may rely on it already.
        account.apply_removal_policy(RemovalPolicy.RETAIN)
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                reason="AWS's own policy for exactly this role: API Gateway creates each stage's log groups "
                "(named by API id, not known here) and writes to them; AWS keeps it in step with the service.",
            )
        )
