"""Reconciliation (对账): a channel statement file's arrival in the statements bucket (S3 → EventBridge,
`Object Created` under channel-statements/) → the Start function → one execution of the Standard state
machine per file version (named from the key and its version id):

  Start → (proceed?) → Match (streamed; a file not in id order is split into hash buckets) → MatchBucket
  (one bucket per invocation, looped by MoreBuckets?) → Settle (the buckets' leftovers together)
  → Compensate (a chunk of exceptions per invocation, looped)
  → Complete (report to S3) → EmitCompleted (ReconciliationCompleted) → EmitOpened (Map:
  ReconciliationExceptionOpened per new open exception) → Reconciled
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from coupons.data.channel_statements import PREFIX
from coupons.data.schema import BANK, MAIN
from coupons.domain.orders_file import PREFIX as ORDER_FILES
from coupons.orders_wiring import GRACE_HOURS
from coupons.reconciliation_wiring import FORMATS, POLICY, STATE_MACHINE_ARN, STATEMENTS_BUCKET
from infra.constructs.function import ServiceFunction
from infra.constructs.layers import Layers
from infra.constructs.log_groups import tenant_log_group
from infra.constructs.settlement import KEY_ACTIONS, TRANSIENT, VENDED_LOGS
from infra.constructs.table_access import table_statements
from infra.tenants import Tenant

RESOLUTIONS_EVERY = Duration.minutes(5)

EVENT_SOURCE = "coupons.reconciliation"
COMPLETED = "ReconciliationCompleted"
EXCEPTION_OPENED = "ReconciliationExceptionOpened"
REPORTS = "reconciliation-runs/*"
PERMANENT = ["StatementFormatError", "ValueError", "KeyError", "InstructionMismatch"]
COMPENSATE_CHUNK = 50


class Reconciliation(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tenant: Tenant,
        layers: Layers,
        table: dynamodb.Table,
        statements: s3.IBucket,
        key: kms.IKey,
        bank: dynamodb.ITable | None,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = {
            MAIN.env_var: table.table_name,
            STATEMENTS_BUCKET: statements.bucket_name,
            POLICY: json.dumps(tenant.reconciliation_policy.model_dump(), sort_keys=True),
            FORMATS: json.dumps(tenant.reconciliation_statement_formats, sort_keys=True),
            "PAYMENT_CHANNEL": tenant.payment_channel,
        }
        policies = [
            *table_statements(table, "reconciliation"),
            iam.PolicyStatement(actions=KEY_ACTIONS, resources=[key.key_arn]),
            # The files (every version: a run reads the version it was started for) and its reports.
            iam.PolicyStatement(actions=["s3:GetObject", "s3:GetObjectVersion"],
                                resources=[statements.arn_for_objects(f"{PREFIX}*")]),  # fmt: skip
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[statements.arn_for_objects(REPORTS)]),
            # A file not in id order: the hash-bucket chunks and results the run wrote under its prefix.
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[statements.arn_for_objects(REPORTS)]),
        ]
        if bank is not None:
            environment[BANK.env_var] = bank.table_name
            policies.append(iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], resources=[bank.table_arn]
            ))  # fmt: skip
        self.steps = ServiceFunction(
            self, "Steps", tenant=tenant, folder="reconciliation/steps",
            description="Reconciliation: match a channel statement and compensate", layers=layers, key=key,
            statements=policies, environment=environment, memory_size=1024, timeout_seconds=900,
        ).function  # fmt: skip
        self.state_machine = self._state_machine(tenant, key)
        self.start = ServiceFunction(
            self, "Starter", tenant=tenant, folder="reconciliation/start",
            description="Reconciliation: start one run per statement file version", layers=layers, key=key,
            statements=[iam.PolicyStatement(actions=["states:StartExecution"],
                                            resources=[self.state_machine.state_machine_arn])],
            environment={STATE_MACHINE_ARN: self.state_machine.state_machine_arn},
        ).function  # fmt: skip
        # S3 → EventBridge (the bucket's EventBridge notifications) → the Start function.
        self.rule = events.Rule(
            self,
            "StatementArrived",
            description=f"A channel statement file arrived ({tenant.name})",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [statements.bucket_name]}, "object": {"key": [{"prefix": PREFIX}]}},
            ),
            targets=[targets.LambdaFunction(self.start, retry_attempts=8, max_event_age=Duration.hours(24))],
        )
        # Finance's resolutions (a RESEND among them) are posted by the steps function, which holds the
        # channel; at every run's end, and by this schedule in between, so a resend does not wait a day.
        self.resolutions = events.Rule(
            self,
            "ResolutionsSchedule",
            description=f"Post finance's reconciliation resolutions, resends included ({tenant.name})",
            schedule=events.Schedule.rate(RESOLUTIONS_EVERY),
            targets=[targets.LambdaFunction(
                self.steps, event=events.RuleTargetInput.from_object({"step": "post_resolutions"}), retry_attempts=2,
            )],
        )  # fmt: skip
        self.order_files = self._order_files(tenant, layers, table, statements, key)
        for function in (self.steps, self.start):
            Validations.of(function.role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{_logical_id(statements)}.Arn>/{PREFIX}*]",
                    reason="Reconciliation reads the channel statement files (every version), all of them under the "
                    "channel-statements/ prefix, and no other object of the bucket.",
                ),
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{_logical_id(statements)}.Arn>/{REPORTS}]",
                    reason="Reconciliation writes one report per run, all of them under the reconciliation-runs/ "
                    "prefix, and no other object of the bucket.",
                ),
            )

    def _order_files(self, tenant: Tenant, layers: Layers, table, statements: s3.IBucket, key: kms.IKey):
        """Orders against coupons: a merchant's daily order file (order-files/{merchant}/{date}.csv) →
        the OrderFiles function (S3 → EventBridge, like the statements)."""
        function = ServiceFunction(
            self, "OrderFiles", tenant=tenant, folder="orders/file",
            description="Orders against coupons: apply a merchant's daily order file", layers=layers, key=key,
            statements=[
                *table_statements(table, "orders"),
                iam.PolicyStatement(actions=KEY_ACTIONS, resources=[key.key_arn]),
                iam.PolicyStatement(actions=["s3:GetObject", "s3:GetObjectVersion"],
                                    resources=[statements.arn_for_objects(f"{ORDER_FILES}*")]),
            ],
            environment={MAIN.env_var: table.table_name, GRACE_HOURS: str(tenant.order_outcome_grace_hours)},
            timeout_seconds=300,
        ).function  # fmt: skip
        events.Rule(
            self, "OrderFileArrived", description=f"A merchant's order file arrived ({tenant.name})",
            event_pattern=events.EventPattern(
                source=["aws.s3"], detail_type=["Object Created"],
                detail={"bucket": {"name": [statements.bucket_name]}, "object": {"key": [{"prefix": ORDER_FILES}]}},
            ),
            targets=[targets.LambdaFunction(function, retry_attempts=8, max_event_age=Duration.hours(24))],
        )  # fmt: skip
        Validations.of(function.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(statements)}.Arn>/{ORDER_FILES}*]",
                reason="The order-file function reads merchants' order files (every version), all of them under the "
                "order-files/ prefix, and no other object of the bucket.",
            ),
        )
        return function

    def _task(self, name: str, payload: dict, result_path: str | None):
        task = tasks.LambdaInvoke(
            self, name, lambda_function=self.steps, payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True, retry_on_service_exceptions=False,
            result_path=result_path if result_path is not None else sfn.JsonPath.DISCARD,
        )  # fmt: skip
        task.add_retry(errors=PERMANENT, max_attempts=0)
        task.add_retry(errors=[sfn.Errors.ALL], **TRANSIENT)
        return task

    def _state_machine(self, tenant: Tenant, key: kms.IKey) -> sfn.StateMachine:
        run = {"run_id.$": "$.run.run_id"}
        start = self._task(
            "Start",
            {"step": "start", "bucket.$": "$.bucket", "key.$": "$.key", "version_id.$": "$.version_id",
             "execution.$": "$$.Execution.Name"},
            "$.run",
        )  # fmt: skip
        match = self._task("Match", {"step": "match", **run}, "$.cursor")
        # A file not in id order: one hash bucket an invocation (memory and time bounded by a bucket),
        # then its leftovers settled together. A file in order goes straight to Compensate.
        match_bucket = self._task(
            "MatchBucket", {"step": "match_bucket", **run, "bucket.$": "$.cursor.next_bucket"}, "$.cursor"
        )
        settle = self._task("Settle", {"step": "settle", **run}, "$.cursor")
        compensate = self._task(
            "Compensate", {"step": "compensate", **run, "start.$": "$.cursor.start", "limit": COMPENSATE_CHUNK},
            "$.cursor",
        )  # fmt: skip
        complete = self._task("Complete", {"step": "complete", **run}, "$.done")
        emit_completed = tasks.EventBridgePutEvents(
            self, "EmitCompleted",
            entries=[tasks.EventBridgePutEventsEntry(source=EVENT_SOURCE, detail_type=COMPLETED,
                                                     detail=sfn.TaskInput.from_json_path_at("$.done.completed"))],
            result_path=sfn.JsonPath.DISCARD,
        )  # fmt: skip
        emit_completed.add_retry(errors=[sfn.Errors.ALL], **TRANSIENT)
        emit_one = tasks.EventBridgePutEvents(
            self, "EmitOpened",
            entries=[tasks.EventBridgePutEventsEntry(source=EVENT_SOURCE, detail_type=EXCEPTION_OPENED,
                                                     detail=sfn.TaskInput.from_json_path_at("$"))],
            result_path=sfn.JsonPath.DISCARD,
        )  # fmt: skip
        emit_one.add_retry(errors=[sfn.Errors.ALL], **TRANSIENT)
        opened = sfn.Map(
            self, "EmitOpenedExceptions", items_path="$.done.opened", max_concurrency=5,
            result_path=sfn.JsonPath.DISCARD,
        ).item_processor(emit_one)  # fmt: skip
        more = (
            sfn.Choice(self, "MoreToCompensate?")
            .when(sfn.Condition.boolean_equals("$.cursor.more", True), compensate)
            .otherwise(complete.next(emit_completed).next(opened).next(sfn.Succeed(self, "Reconciled")))
        )
        buckets = (
            sfn.Choice(self, "MoreBuckets?")
            .when(sfn.Condition.boolean_equals("$.cursor.more_buckets", True), match_bucket)
            .when(sfn.Condition.boolean_equals("$.cursor.settle", True), settle)
            .otherwise(compensate)
        )
        match_bucket.next(buckets)
        settle.next(compensate)
        compensate.next(more)
        definition = start.next(
            sfn.Choice(self, "Proceed?")
            .when(sfn.Condition.boolean_equals("$.run.proceed", False),
                  sfn.Succeed(self, "AlreadyReconciled", comment="This file version's run completed."))  # fmt: skip
            .otherwise(match.next(buckets))
        )
        logs_group = tenant_log_group(
            self, "Logs", key=key, name=f"{VENDED_LOGS}{Stack.of(self).stack_name}-reconciliation",
            retention=logs.RetentionDays.ONE_YEAR,
        )  # fmt: skip
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.hours(6),
            tracing_enabled=True,
            # Never the states' data: amounts and parties do not belong in logs.
            logs=sfn.LogOptions(destination=logs_group, level=sfn.LogLevel.ERROR, include_execution_data=False),
            comment=f"Reconciliation of tenant {tenant.name}: one run per channel statement file version",
        )
        machine.add_to_role_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[key.key_arn]))
        Validations.of(machine).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(self.steps)}.Arn>:*]",
                reason="LambdaInvoke grants the reconciliation steps function by any version or alias "
                "(function:{name}:*): that one function of this tenant, nothing else.",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray tracing and log delivery to CloudWatch Logs support no resource-level permissions.",
            ),
            Acknowledgment(
                id="AwsSolutions-SF1",
                reason="The state machine logs ERROR and never execution data (states carry amounts and "
                "parties); the steps function logs its own work, and X-Ray traces every execution.",
            ),
        )
        return machine


def _logical_id(construct: Construct) -> str:
    return Stack.of(construct).get_logical_id(construct.node.default_child)


__all__ = ["Reconciliation", "lambda_"]
