"""How each Lambda function of a tenant is made: its own role and log group, the layers, tracing, settings."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from coupons.config import HOLIDAY_CALENDAR_ENV, T0_CUTOFF_ENV
from coupons.domain import calendars
from infra import REPO_ROOT
from infra.constructs.layers import ARCHITECTURE, ASSET_EXCLUDE, RUNTIME, Layers
from infra.constructs.log_groups import tenant_log_group
from infra.tenants import Tenant

# One service name for every function, so logs, traces and metrics of one request line up.
SERVICE_NAME = "coupons"


def metrics_namespace(tenant: Tenant) -> str:
    return f"CouponClearing/{tenant.name}"


def common_environment(tenant: Tenant) -> dict[str, str]:
    return {
        "TENANT": tenant.name,
        # IANA zone of the tenant's business day: redemption and clearing date records in it, not in UTC.
        "TENANT_TIME_ZONE": tenant.settlement_time_zone,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace(tenant),
        "POWERTOOLS_LOG_LEVEL": tenant.log_level,
        "LOG_LEVEL": tenant.log_level,
    }


def t0_cutoff_environment(tenant: Tenant) -> dict[str, str]:
    """The tenant's T+0 cut-off for the functions that derive a run's cut-off (the API's start, the
    Open step); nothing when the tenant has no intraday run."""
    return {T0_CUTOFF_ENV: tenant.settlement_t0_cutoff} if tenant.settlement_t0_cutoff else {}


# Lambda allows 4 KB of environment in all; a calendar may take half of it (about 150 days).
CALENDAR_ENV_LIMIT = 2048


def calendar_environment(tenant: Tenant) -> dict[str, str]:
    """The tenant's holiday calendar for the functions that compute due dates (clearing); nothing when
    the tenant has none (T+N in calendar days)."""
    calendar = tenant.business_calendar()
    if calendar is None:
        return {}
    text = calendars.to_environment(calendar)
    if len(text) > CALENDAR_ENV_LIMIT:
        raise ValueError(
            f"calendar {calendar.name} is {len(text)} characters: keep it under {CALENDAR_ENV_LIMIT}"
        )
    return {HOLIDAY_CALENDAR_ENV: text}


class ServiceFunction(Construct):
    """A function under functions/<folder>, with a role that holds only the given statements."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tenant: Tenant,
        folder: str,
        description: str,
        layers: Layers,
        key: kms.IKey,
        statements: list[iam.PolicyStatement],
        environment: dict[str, str],
        memory_size: int = 512,
        timeout_seconds: int = 29,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # An explicit log group (not the logRetention custom resource): its retention and lifetime
        # are declared here, and it is the only log group this function's role may write to.
        self.log_group = tenant_log_group(self, "Logs", key=key)
        # A role per function, never shared: what one function may do is readable from its role alone.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} ({tenant.name})",
            inline_policies={
                "Logs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                            resources=[self.log_group.log_group_arn],
                        )
                    ]
                ),
                "Access": iam.PolicyDocument(statements=statements),
            },
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=lambda_.Code.from_asset(str(REPO_ROOT / "functions" / folder), exclude=ASSET_EXCLUDE),
            handler="handler.lambda_handler",
            layers=[layers.core, layers.deps],
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            memory_size=memory_size,
            timeout=Duration.seconds(timeout_seconds),
            reserved_concurrent_executions=reserved_concurrency,
            environment={**common_environment(tenant), **environment},
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Active tracing lets the function send X-Ray segments; xray:PutTraceSegments and "
                "xray:PutTelemetryRecords support no resource-level permissions, so their resource is '*'.",
            )
        )
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="The code base and the dependencies layer are locked to Python 3.11 (pyproject's "
                "requires-python, the layer's wheels); moving runtime is a deliberate, tested upgrade of "
                "both, not a drift the stack should make on its own.",
            )
        )
