"""The REST API: API Gateway proxies every path to the API function, which routes, authenticates, checks."""

from __future__ import annotations

from aws_cdk import Acknowledgment, ArnFormat, Aws, Fn, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from coupons.data.schema import MAIN
from coupons.data.secrets import ENV_VAR as TENANT_SECRET_ENV
from coupons.settlement_wiring import STATE_MACHINE_ARN, STATEMENTS_BUCKET
from infra.constructs.function import ServiceFunction, t0_cutoff_environment
from infra.constructs.instant import instant_environment
from infra.constructs.layers import Layers
from infra.constructs.log_groups import tenant_log_group
from infra.constructs.settlement import executions_of
from infra.constructs.table_access import table_statements
from infra.tenants import Tenant

# Routes live under /v1 in the path, so the stage keeps one fixed name and API versions coexist behind it.
STAGE_NAME = "prod"

# The idempotency contract promises at least 24 h; twice that covers a client retrying the next day.
IDEMPOTENCY_TTL_SECONDS = 48 * 3600
# What the API reads of the statements bucket: the parties' statements (coupons.data.statements).
STATEMENT_OBJECTS = "settlement-runs/*/statements/*"

KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tenant: Tenant,
        layers: Layers,
        table: dynamodb.Table,
        key: kms.IKey,
        secret: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = ServiceFunction(
            self,
            "Handler",
            tenant=tenant,
            folder="api",
            description="Coupon clearing REST API",
            layers=layers,
            key=key,
            statements=[
                # Reads anywhere; writes only its own entities' items (coupons.data.access: "api").
                *table_statements(table, "api"),
                iam.PolicyStatement(actions=KEY_ACTIONS, resources=[key.key_arn]),
                # The tenant secret and nothing else (not grant_read: DescribeSecret is not needed). Its
                # value is encrypted with the data key above, whose kms:Decrypt covers reading it.
                iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[secret.secret_arn]),
            ],
            environment={
                MAIN.env_var: table.table_name,
                "API_KEY_CACHE_SECONDS": str(tenant.api_key_cache_seconds),
                "IDEMPOTENCY_TTL_SECONDS": str(IDEMPOTENCY_TTL_SECONDS),
                "HOLD_SECONDS": str(tenant.hold_seconds),
                TENANT_SECRET_ENV: secret.secret_arn,
                # Resolving a reconciliation exception needs a second finance principal (the tenant file).
                "RECONCILIATION_FOUR_EYES": "true" if tenant.reconciliation_four_eyes else "false",
                # An admin's intraday run of a date is cut at this local time (coupons.domain.timeline).
                **t0_cutoff_environment(tenant),
                "RECONCILIATION_FEE_BEARER": tenant.reconciliation_policy.fee_bearer,
                "ORDER_OUTCOME_GRACE_HOURS": str(tenant.order_outcome_grace_hours),
                # A merchant's settlement mode defaults to the tenant's (docs/instant.md).
                **instant_environment(tenant),
            },
        )
        self.function = self.handler.function

        access_logs = tenant_log_group(self, "AccessLogs", key=key)
        throttle = tenant.api_throttle
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            # A display name, not an identifier (API Gateway names need not be unique): says which tenant.
            rest_api_name=f"{Stack.of(self).stack_name}-api",
            description=f"Coupon clearing API of tenant {tenant.name}",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # The account's CloudWatch role is the account stack's (infra/account.py), which this
            # stack depends on: one per account and region, shared by every tenant.
            cloud_watch_role=False,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                tracing_enabled=True,
                metrics_enabled=True,
                # Execution logs of failed requests only, without bodies (no data trace): a body carries
                # coupon codes and amounts.
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                # Every route of the stage; the tenant file tightens single routes below.
                throttling_rate_limit=throttle.rate_limit,
                throttling_burst_limit=throttle.burst_limit,
                method_options={
                    # A method's settings replace the stage's for it: metrics and logging said again.
                    _method_path(route): apigateway.MethodDeploymentOptions(
                        throttling_rate_limit=limit.rate_limit,
                        throttling_burst_limit=limit.burst_limit,
                        metrics_enabled=True,
                        logging_level=apigateway.MethodLoggingLevel.ERROR,
                        data_trace_enabled=False,
                    )
                    for route, limit in tenant.api_route_throttles.items()
                },
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
            ),
        )
        # API Gateway makes the execution log group on first use, unencrypted and kept forever; made
        # here first, under the name it will use, it has the tenant's key and a retention.
        tenant_log_group(
            self,
            "ExecutionLogs",
            key=key,
            name=f"API-Gateway-Execution-Logs_{self.rest_api.rest_api_id}/{STAGE_NAME}",
        )
        # Spelled out rather than `rest_api.url`, which refers to the Stage resource: the URL then
        # also resolves where the stage is not created (moto's CloudFormation skips it).
        self.url = Fn.join(
            "",
            ["https://", self.rest_api.rest_api_id, ".execute-api.", Aws.REGION, ".", Aws.URL_SUFFIX,
             f"/{STAGE_NAME}/"],
        )  # fmt: skip
        # No test-invoke permission: the console's test button is not a way to call a tenant's API.
        integration = apigateway.LambdaIntegration(self.function, proxy=True, allow_test_invoke=False)
        # The function owns routing (404/405 as problem+json), so API Gateway forwards everything.
        self.rest_api.root.add_method("ANY", integration)
        self.rest_api.root.add_proxy(default_integration=integration, any_method=True)
        # A route throttled on its own needs a resource of its own (API Gateway throttles per resource
        # and method). Each resource on its path forwards ANY method too: a request that matches a
        # resource never falls back to {proxy+}, so without it a sibling route would answer 403.
        for route in tenant.api_route_throttles:
            method, path = route.split(" ", 1)
            resource = self.rest_api.root
            for part in path.strip("/").split("/"):
                resource = resource.get_resource(part) or _forwarding(
                    resource.add_resource(part), integration
                )
            resource.add_method(method, integration)
        self.web_acl = _web_acl(self, tenant, self.rest_api.deployment_stage, key)

        auth = (
            "Callers authenticate with an x-api-key that the API function checks against hashed keys in "
            "DynamoDB and maps to a principal (admin, issuer, merchant); an API Gateway authorizer or API "
            "key would be a second, diverging auth system."
        )
        Validations.of(self.rest_api).acknowledge(
            Acknowledgment(id="AwsSolutions-APIG4", reason=auth),
            Acknowledgment(id="AwsSolutions-COG4", reason=auth),
            Acknowledgment(
                id="AwsSolutions-APIG2",
                reason="Requests are validated in the function by pydantic models that answer with RFC 9457 "
                "problem+json naming the field; API Gateway validators would answer in another format, "
                "before the function could.",
            ),
        )

    def allow_settlement(self, state_machine: sfn.StateMachine, statements: s3.IBucket) -> None:
        """Ops start, resume and follow settlement runs, and parties read their statements, through the API."""
        self.function.add_environment(STATE_MACHINE_ARN, state_machine.state_machine_arn)
        self.function.add_environment(STATEMENTS_BUCKET, statements.bucket_name)
        execution_arns = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{Stack.of(self).split_arn(state_machine.state_machine_arn, ArnFormat.COLON_RESOURCE_NAME).resource_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.handler.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]
            )
        )
        self.handler.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[execution_arns])
        )
        self.handler.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[statements.arn_for_objects(STATEMENT_OBJECTS)]
            )
        )
        # Without ListBucket, S3 answers a missing key with 403 instead of NoSuchKey, and "this party has
        # no statement" would be a 500; the condition keeps the listing to the settlement runs.
        self.handler.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[statements.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["settlement-runs/*"]}},
            )
        )
        bucket_id = Stack.of(self).get_logical_id(statements.node.default_child)
        Validations.of(self.handler.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{executions_of(state_machine)}:*]",
                reason="DescribeExecution on the settlement state machine's executions only: their names are "
                "made per run (settle-{tenant}-{date}-{attempt}).",
            ),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{STATEMENT_OBJECTS}]",
                reason="Reading statements (one object per run and party) and nothing else of the bucket.",
            ),
        )


def _method_path(route: str) -> str:
    """The key of a stage's method settings: "POST /v1/redemptions" → "/v1/redemptions/POST"."""
    method, path = route.split(" ", 1)
    return f"{path}/{method}"


def _forwarding(resource: apigateway.Resource, integration: apigateway.Integration) -> apigateway.Resource:
    resource.add_method("ANY", integration)
    return resource


# What a rule does when it matches; the managed rules keep their own (block) actions.
_RATE_RULE_PRIORITY = 0
_COMMON_RULES_PRIORITY = 1


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _web_acl(scope: Construct, tenant: Tenant, stage: apigateway.Stage, key: kms.IKey) -> wafv2.CfnWebACL:
    """A regional web ACL on the stage: a per-IP rate limit (first: a flood is cut before anything else is
    evaluated) and AWS's common rule set (known bad inputs, oversized bodies, scanners)."""
    name = Stack.of(scope).stack_name
    acl = wafv2.CfnWebACL(
        scope,
        "WebAcl",
        name=f"{name}-api",
        scope="REGIONAL",
        description=f"Coupon clearing API of tenant {tenant.name}: per-IP rate limit, AWS common rules",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=_visibility(f"{name}-api"),
        rules=[
            wafv2.CfnWebACL.RuleProperty(
                name="RatePerIp",
                priority=_RATE_RULE_PRIORITY,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP",
                        limit=tenant.waf_rate_limit_per_ip,
                        evaluation_window_sec=300,
                    )
                ),
                visibility_config=_visibility(f"{name}-rate-per-ip"),
            ),
            wafv2.CfnWebACL.RuleProperty(
                name="AWSManagedRulesCommonRuleSet",
                priority=_COMMON_RULES_PRIORITY,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name="AWSManagedRulesCommonRuleSet"
                    )
                ),
                visibility_config=_visibility(f"{name}-common-rules"),
            ),
        ],
    )
    # The stage's ARN refers to the stage, so the association waits for it.
    wafv2.CfnWebACLAssociation(
        scope, "WebAclAssociation", resource_arn=stage.stage_arn, web_acl_arn=acl.attr_arn
    )
    # WAF logs go to a log group whose name must start with aws-waf-logs-; blocked requests are what
    # an operator reads there (docs/runbook.md).
    waf_logs = tenant_log_group(scope, "WafLogs", key=key, name=f"aws-waf-logs-{name}")
    wafv2.CfnLoggingConfiguration(
        scope,
        "WafLogging",
        resource_arn=acl.attr_arn,
        log_destination_configs=[waf_logs.log_group_arn],
    )
    return acl
