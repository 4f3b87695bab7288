"""Alarms of a tenant and the SNS topic they notify (mailed to the tenant's on-call addresses, if any).
Every alarm is named {stack}-{id} and has a section in docs/runbook.md."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.encryption import narrow_policy
from infra.constructs.function import SERVICE_NAME, metrics_namespace
from infra.constructs.settlement import OVERDUE_METRIC, Settlement
from infra.tenants import Tenant

_PERIOD = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, tenant: Tenant) -> None:
        super().__init__(scope, construct_id)
        # Its own key, not the data key: CloudWatch must be allowed to use the topic's key, and that
        # grant should reach no tenant data.
        self.key = kms.Key(
            self,
            "TopicKey",
            description=f"Coupon clearing alarm topic of tenant {tenant.name}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
            # Used by CloudWatch (below) and through SNS by this account's principals (a test message).
            policy=narrow_policy(self, ("sns",)),
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"Coupon clearing alarms ({tenant.name})",
            master_key=self.key,
            enforce_ssl=True,
        )
        # The topic policy replaces SNS's default one (enforce_ssl writes it), so CloudWatch may publish
        # only because this says so: alarms of this account, nobody else's.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
                    "ArnLike": {
                        "aws:SourceArn": Stack.of(self).format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        for email in tenant.alarm_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self._action = actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []
        # The names, as literals: the dashboard refers to the alarms by these, not by a reference to the
        # resources (which moto's CloudFormation does not create, so the local stack could not resolve).
        self.alarm_names: list[str] = []

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        description: str,
        threshold: float = 1,
        treat_missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        # By default any occurrence is worth a look: these count failures, and a healthy tenant has none.
        alarm = metric.create_alarm(
            self,
            construct_id,
            # Named {stack}-{id}: docs/runbook.md has a section per id (a test keeps them in step).
            alarm_name=f"{Stack.of(self).stack_name}-{construct_id}",
            alarm_description=f"{description} Runbook: docs/runbook.md#{construct_id.lower()}",
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=treat_missing_data,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)
        self.alarm_names.append(f"{Stack.of(self).stack_name}-{construct_id}")
        return alarm

    def watch_api(self, rest_api: apigateway.RestApi) -> None:
        self._alarm(
            "Api5xx",
            rest_api.metric_server_error(period=_PERIOD, statistic="Sum"),
            "The API answered 5xx: bad input must be a 4xx, so a 5xx is a bug or an outage.",
        )

    def watch_function(self, prefix: str, function: lambda_.IFunction) -> None:
        self._alarm(
            f"{prefix}Errors",
            function.metric_errors(period=_PERIOD, statistic="Sum"),
            f"The {prefix} function raised errors.",
        )
        self._alarm(
            f"{prefix}Throttles",
            function.metric_throttles(period=_PERIOD, statistic="Sum"),
            f"The {prefix} function was throttled for lack of concurrency: API callers got 429/5xx, a stream "
            "consumer fell behind.",
        )

    def watch_dead_letters(self, prefix: str, queue: sqs.IQueue) -> None:
        self._alarm(
            f"{prefix}DeadLetters",
            queue.metric_approximate_number_of_messages_visible(period=_PERIOD, statistic="Maximum"),
            f"The {prefix} dead-letter queue holds a message: a record was given up after its retries and "
            "must be replayed by an operator.",
        )

    def watch_stream_lag(self, prefix: str, function: lambda_.IFunction) -> None:
        # A failing record alone is not alarmed (a reversal that arrives before its redemption fails
        # once, by design); one that holds its shard back for long, or a consumer that cannot keep up, is.
        self._alarm(
            f"{prefix}IteratorAge",
            function.metric("IteratorAge", period=_PERIOD, statistic="Maximum"),
            f"The {prefix} function is more than 15 minutes behind its stream: retries are holding a shard "
            "back, or it cannot keep up.",
            threshold=Duration.minutes(15).to_milliseconds(),
        )

    def watch_reconciliation(self, tenant: Tenant, reconciliation) -> None:
        machine = reconciliation.state_machine
        self._alarm(
            "ReconciliationExecutionsFailed",
            machine.metric_failed(period=_PERIOD, statistic="Sum"),
            "A reconciliation execution failed: its channel statement is not reconciled.",
        )
        self._alarm(
            "ReconciliationStartErrors",
            reconciliation.start.metric_errors(period=_PERIOD, statistic="Sum"),
            "A statement file's arrival did not start its reconciliation (EventBridge retries for 24 h).",
        )
        for construct_id, what in (
            ("ReconciliationExceptionsOverdue", "Reconciliation exceptions have been open for more than a day."),
            ("ReconciliationSuspense", "Money waits in a suspense:{channel} account (挂账) for finance's review."),
        ):
            self._alarm(
                construct_id,
                cloudwatch.Metric(
                    namespace=metrics_namespace(tenant),
                    metric_name=construct_id,  # the gauge functions/reconciliation/steps emits per run
                    dimensions_map={"service": SERVICE_NAME, "tenant": tenant.name},
                    period=Duration.hours(1),
                    statistic="Maximum",
                ),
                what,
            )

    def watch_settlement(self, tenant: Tenant, settlement: Settlement) -> None:
        machine = settlement.state_machine
        for construct_id, metric, what in (
            ("SettlementExecutionsFailed", machine.metric_failed, "failed"),
            ("SettlementExecutionsTimedOut", machine.metric_timed_out, "timed out"),
            ("SettlementExecutionsAborted", machine.metric_aborted, "was stopped"),
        ):
            self._alarm(
                construct_id,
                metric(period=_PERIOD, statistic="Sum"),
                f"A settlement execution {what}: its run is FAILED (resumable) or still RUNNING, its payouts "
                "incomplete.",
            )
        for step, function in settlement.functions.items():
            name = "".join(part.capitalize() for part in step.split("_"))
            self._alarm(
                f"Settlement{name}Errors",
                function.metric_errors(period=_PERIOD, statistic="Sum"),
                f"The settlement step {step} raised errors (the state machine retries transient ones).",
            )
        self._alarm(
            "SettlementHeartbeatErrors",
            settlement.heartbeat.metric_errors(period=_PERIOD, statistic="Sum"),
            "The settlement deadline check failed: whether the day's run closed is unknown.",
        )
        self.watch_dead_letters("SettlementSchedule", settlement.schedule_dead_letters)
        self._alarm(
            OVERDUE_METRIC,
            cloudwatch.Metric(
                namespace=metrics_namespace(tenant),
                metric_name=OVERDUE_METRIC,
                # As powertools Metrics writes it (coupons.observability): service and tenant.
                dimensions_map={"service": SERVICE_NAME, "tenant": tenant.name},
                period=Duration.hours(1),
                statistic="Maximum",
            ),
            f"No settlement run was closed for the day before by {tenant.settlement_deadline} "
            f"({tenant.settlement_time_zone}): payouts are late.",
        )
