"""The tenant's CloudWatch dashboard `{stack}`: what on call reads first (docs/runbook.md, "The dashboard").
Rows follow a redemption's way: the API, the business events, clearing, settlement, the dead letters."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from coupons.business_events import Event
from infra.constructs.function import SERVICE_NAME, metrics_namespace
from infra.constructs.settlement import Settlement
from infra.tenants import Tenant

_MINUTE = Duration.minutes(1)
_WIDTH = 8  # three widgets a row (the grid is 24 wide)
_HEIGHT = 6
# Emitted by the clearing function (functions/clearing/handler.py), beside the business events.
CLEARING_PENDING = "ClearingRecordsPending"
CLEARING_FAILED = "ClearingRecordFailed"


class Dashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tenant: Tenant,
        rest_api: apigateway.RestApi,
        api_function: lambda_.IFunction,
        clearing_function: lambda_.IFunction,
        clearing_dead_letters: sqs.IQueue,
        settlement: Settlement,
        alarm_names: list[str],
    ) -> None:
        super().__init__(scope, construct_id)

        def business(event: Event | str, label: str, statistic: str = "Sum") -> cloudwatch.Metric:
            # The dimensions powertools Metrics writes (coupons.observability): service and tenant.
            return cloudwatch.Metric(
                namespace=metrics_namespace(tenant),
                metric_name=str(event),
                dimensions_map={"service": SERVICE_NAME, "tenant": tenant.name},
                statistic=statistic,
                period=_MINUTE,
                label=label,
            )

        def graph(title: str, left: list, right: list | None = None, **kwargs) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=title, left=left, right=right or [], width=_WIDTH, height=_HEIGHT, **kwargs
            )

        machine = settlement.state_machine
        alarms = [
            cloudwatch.Alarm.from_alarm_name(self, f"Alarm{i}", name) for i, name in enumerate(alarm_names)
        ]
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=Stack.of(self).stack_name,
            default_interval=Duration.hours(3),
            widgets=[
                [
                    graph(
                        "API requests, 4xx, 5xx (a minute)",
                        [rest_api.metric_count(period=_MINUTE, statistic="Sum", label="requests")],
                        [
                            rest_api.metric_client_error(period=_MINUTE, statistic="Sum", label="4xx"),
                            rest_api.metric_server_error(period=_MINUTE, statistic="Sum", label="5xx"),
                        ],
                    ),
                    graph(
                        "API latency (ms)",
                        [
                            rest_api.metric_latency(period=_MINUTE, statistic="p50", label="p50"),
                            rest_api.metric_latency(period=_MINUTE, statistic="p99", label="p99"),
                            rest_api.metric_integration_latency(
                                period=_MINUTE, statistic="p99", label="function p99"
                            ),
                        ],
                    ),
                    graph(
                        "API function errors, throttles",
                        [
                            api_function.metric_errors(period=_MINUTE, statistic="Sum", label="errors"),
                            api_function.metric_throttles(period=_MINUTE, statistic="Sum", label="throttles"),
                        ],
                    ),
                ],
                [
                    graph(
                        "Redemptions and reversals (a minute)",
                        [
                            business(Event.COUPON_REDEEMED, "redemptions"),
                            business(Event.REDEMPTION_REVERSED, "reversals"),
                        ],
                        [business(Event.COUPON_ISSUED, "issued"), business(Event.COUPON_VOIDED, "voided")],
                    ),
                    graph("Journals posted (a minute)", [business(Event.JOURNAL_POSTED, "journals")]),
                    graph(
                        "Clearing: iterator age (ms), records pending",
                        [
                            clearing_function.metric(
                                "IteratorAge", period=_MINUTE, statistic="Maximum", label="iterator age"
                            )
                        ],
                        [
                            business(CLEARING_PENDING, "pending retry", "Maximum"),
                            business(CLEARING_FAILED, "failed records"),
                        ],
                    ),
                ],
                [
                    graph(
                        "Settlement duration (s)",
                        [
                            cloudwatch.MathExpression(
                                expression="m / 1000",
                                using_metrics={
                                    "m": machine.metric_time(period=Duration.hours(1), statistic="Maximum")
                                },
                                label="execution time",
                                period=Duration.hours(1),
                            )
                        ],
                    ),
                    graph(
                        "Settlement outcome (an hour)",
                        [
                            machine.metric_succeeded(
                                period=Duration.hours(1), statistic="Sum", label="succeeded"
                            ),
                            machine.metric_failed(period=Duration.hours(1), statistic="Sum", label="failed"),
                            machine.metric_timed_out(
                                period=Duration.hours(1), statistic="Sum", label="timed out"
                            ),
                            machine.metric_aborted(
                                period=Duration.hours(1), statistic="Sum", label="aborted"
                            ),
                        ],
                        [
                            business(Event.SETTLEMENT_RUN_CLOSED, "runs closed"),
                            business(Event.SETTLEMENT_RUN_FAILED, "runs failed"),
                            business(Event.PAYOUT_SENT, "transfers sent"),
                        ],
                        stacked=False,
                    ),
                    graph(
                        "Dead-letter depth (messages)",
                        [
                            clearing_dead_letters.metric_approximate_number_of_messages_visible(
                                period=_MINUTE, statistic="Maximum", label="clearing"
                            ),
                            settlement.schedule_dead_letters.metric_approximate_number_of_messages_visible(
                                period=_MINUTE, statistic="Maximum", label="settlement schedules"
                            ),
                        ],
                    ),
                ],
                [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24, height=4)],
            ],
        )
