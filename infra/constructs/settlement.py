"""Settlement (结算): the Standard state machine that runs one settlement date's run (daily, or intraday
T+0) up to its cut-off, its step functions, the schedules that start them, and the simulated bank it
pays through (for tenants on it).

  Open → (proceed?) → AwaitClearing → ClaimShards (Map over the 32 ledger shards) → Plan →
  SettleParties (Distributed Map over batches of 100 parties, read from S3: Pay → WriteStatements →
  MarkSettled) → Close → EmitCompleted (EventBridge: SettlementRunCompleted) → Settled
  Any failure after Open → RecordFailure (the run is FAILED, resumable) → Failed
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, TimeZone, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from coupons.data.schema import BANK, MAIN
from coupons.settlement_wiring import CHANNEL_FEES, MINIMUM_TRANSFER, STATEMENTS_BUCKET
from infra.constructs.function import ServiceFunction, t0_cutoff_environment
from infra.constructs.layers import Layers
from infra.constructs.log_groups import tenant_log_group
from infra.constructs.table_access import table_statements
from infra.constructs.tables import table_from_schema
from infra.tenants import Tenant

EVENT_SOURCE = "coupons.settlement"
COMPLETED = "SettlementRunCompleted"
KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
# Everything settlement writes to the statements bucket lives under this prefix (coupons.data.statements).
RUN_OBJECTS = "settlement-runs/*"
MANIFESTS = "settlement-runs/*/manifest.json"

# Errors that retrying cannot fix: the run fails at once (and can be resumed once the cause is fixed).
# Matched by the Lambda's error type, the exception's class name. InstructionMismatch: the channel
# holds another payment under our instruction id; resending cannot change that, a person must look.
PERMANENT = [
    "TransferRejected",
    "InstructionMismatch",
    "StatementMismatch",
    "SettlementRunNotFound",
    "KeyError",
    "ValueError",
]
# Clearing behind the cut-off: wait up to 30 × 60 s, then fail the run saying so.
CLEARING_WAIT = {"interval": Duration.seconds(60), "max_attempts": 30, "backoff_rate": 1.0}
# Everything else (the channel down or slow, a Lambda crash or timeout, throttling): back off.
TRANSIENT = {
    "interval": Duration.seconds(2),
    "max_attempts": 6,
    "backoff_rate": 2.0,
    "max_delay": Duration.seconds(60),
}
# Lambda invocations at once: the claim Map's shards, and the Distributed Map's batches.
CLAIM_CONCURRENCY = 8
BATCH_CONCURRENCY = 10


@dataclass(frozen=True)
class Step:
    """A step's function. What it may read and write of the main table is coupons.data.access's
    `settlement.{folder}`: each step writes only its own items (the run's, its parties', its lines, the
    postings it claims and settles, the amounts it carries)."""

    folder: str
    description: str
    timeout_seconds: int = 60
    bucket: list[str] | None = None  # S3 actions on the statements bucket
    bank: bool = False  # talks to the payment channel

    @property
    def writer(self) -> str:
        return f"settlement.{self.folder}"


STEPS = [
    Step("open", "Settlement: open the run"),
    Step("await_clearing", "Settlement: wait for clearing"),
    Step("claim", "Settlement: claim due postings of a shard", timeout_seconds=900),
    Step("plan", "Settlement: batch the parties", 300, ["s3:PutObject"]),
    Step("pay", "Settlement: net and transfer", 300, bank=True),
    Step("write_statements", "Settlement: statements to S3", 300, ["s3:PutObject"]),
    Step("mark_settled", "Settlement: mark postings settled", 300),
    Step("close", "Settlement: total and close the run", 300),
    Step("record_failure", "Settlement: record a failed run"),
]
# Not a state of the machine: the check, at the tenant's deadline, that the day before's run closed.
HEARTBEAT = Step("heartbeat", "Settlement: alarm when the day's run is not closed by the deadline")
# The metric the heartbeat emits (1 overdue, 0 closed), in the tenant's powertools namespace.
OVERDUE_METRIC = "SettlementOverdue"
# Step Functions' dedicated prefix: a log group under it needs no CloudWatch Logs resource-policy entry
# (an unprefixed one adds one per stack to the account's 5,120-character policy until deploys fail).
VENDED_LOGS = "/aws/vendedlogs/states/"


class _ManifestReader(sfn.S3JsonItemReader):
    """The Distributed Map's reader, allowed to read the runs' manifests only: the stock reader grants
    s3:GetObject on the whole bucket (statements included), which the state machine never reads."""

    def __init__(self, *, bucket: s3.IBucket, key: str) -> None:
        super().__init__(bucket=bucket, key=key)
        self._manifests = bucket.arn_for_objects(MANIFESTS)

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return [iam.PolicyStatement(actions=["s3:GetObject"], resources=[self._manifests])]


class Settlement(Construct):
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.bank = self._bank(key) if tenant.payment_channel == "simulated" else None
        environment = {
            MAIN.env_var: table.table_name,
            STATEMENTS_BUCKET: statements.bucket_name,
            MINIMUM_TRANSFER: json.dumps(tenant.settlement_minimum_transfer, sort_keys=True),
            CHANNEL_FEES: json.dumps(
                {c: f.model_dump(mode="json") for c, f in tenant.channel_fees.items()}, sort_keys=True
            ),
            # A scheduled intraday run is cut at this local time on the day it fires.
            **t0_cutoff_environment(tenant),
        }
        self.functions: dict[str, lambda_.Function] = {}
        steps_scope = Construct(self, "Steps")
        for step in [*STEPS, HEARTBEAT]:
            statements_ = [
                *table_statements(table, step.writer),
                iam.PolicyStatement(actions=KEY_ACTIONS, resources=[key.key_arn]),
            ]
            env = dict(environment)
            if step.bucket:
                statements_.append(
                    iam.PolicyStatement(
                        actions=step.bucket, resources=[statements.arn_for_objects(RUN_OBJECTS)]
                    )
                )
            if step.bank:
                env["PAYMENT_CHANNEL"] = tenant.payment_channel
                if self.bank is not None:
                    env[BANK.env_var] = self.bank.table_name
                    statements_.append(
                        iam.PolicyStatement(
                            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                            resources=[self.bank.table_arn],
                        )
                    )
            function = ServiceFunction(
                steps_scope,
                "".join(part.capitalize() for part in step.folder.split("_")),
                tenant=tenant,
                folder=f"settlement/{step.folder}",
                description=step.description,
                layers=layers,
                key=key,
                statements=statements_,
                environment=env,
                timeout_seconds=step.timeout_seconds,
                # Set aside for settlement (and its most): no API flood, of this tenant or another,
                # can take the concurrency a run needs; the Maps never ask for more than this each.
                reserved_concurrency=tenant.settlement_reserved_concurrency,
            ).function
            self.functions[step.folder] = function
            if step.bucket:
                Validations.of(function.role).acknowledge(
                    Acknowledgment(
                        id=f"AwsSolutions-IAM5[Resource::<{_logical_id(statements)}.Arn>/{RUN_OBJECTS}]",
                        reason="The step writes settlement documents, one object per run and party, all under "
                        "the settlement-runs/ prefix, and nothing else of the bucket.",
                    )
                )

        self.heartbeat = self.functions.pop(HEARTBEAT.folder)
        self.state_machine = self._state_machine(tenant, statements, key)
        # Invocations the scheduler gave up on (after its retries) land here, alarmed: a missed start.
        self.schedule_dead_letters = sqs.Queue(
            self,
            "ScheduleDeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(self.schedule_dead_letters).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is itself the dead-letter queue of the settlement and heartbeat schedules' "
                "targets; what lands in it is a start that did not happen, redone by an operator (docs/runbook.md, "
                'section "`SettlementScheduleDeadLetters`").',
            )
        )
        self.schedule = self._schedule(tenant, key)
        self.intraday_schedule = self._intraday_schedule(tenant, key) if tenant.settlement_t0_cutoff else None
        self.heartbeat_schedule = self._heartbeat_schedule(tenant, key)

    # -- the simulated bank ------------------------------------------------------------------

    def _bank(self, key: kms.IKey) -> dynamodb.Table:
        # A stand-in for the channel's own books, with the same production settings as our tables.
        return table_from_schema(self, BANK, key)

    # -- the state machine -------------------------------------------------------------------

    def _task(
        self,
        name: str,
        step: str,
        payload: dict,
        *,
        result_path: str | None,
        waits_for_clearing: bool = False,
    ):
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self.functions[step],
            payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=result_path if result_path is not None else sfn.JsonPath.DISCARD,
        )
        task.add_retry(errors=PERMANENT, max_attempts=0)
        if waits_for_clearing:
            task.add_retry(errors=["ClearingBehind"], **CLEARING_WAIT)
        task.add_retry(errors=[sfn.Errors.ALL], **TRANSIENT)
        return task

    def _state_machine(self, tenant: Tenant, statements: s3.IBucket, key: kms.IKey) -> sfn.StateMachine:
        run = {"run_id.$": "$.run.run_id", "business_date.$": "$.run.business_date"}
        # The run's cut-off (Open records it): clearing is awaited, and postings claimed, before it.
        cut = {**run, "cutoff_at.$": "$.run.cutoff_at"}
        execution = sfn.JsonPath.string_at("$$.Execution.Name")

        open_run = self._task(
            "Open",
            "open",
            # The whole input: a start by hand gives the settlement date, kind and cut-off; the schedule the
            # time it fired and the kind.
            {"execution": execution, "input.$": "$"},
            result_path="$.run",
        )
        await_clearing = self._task(
            "AwaitClearing", "await_clearing", cut, result_path=None, waits_for_clearing=True
        )
        claim = sfn.Map(
            self,
            "ClaimShards",
            items_path="$.run.shards",
            item_selector={
                "run_id.$": "$.run.run_id",
                "business_date.$": "$.run.business_date",
                "cutoff_at.$": "$.run.cutoff_at",
                "shard.$": "$$.Map.Item.Value",
            },
            max_concurrency=CLAIM_CONCURRENCY,
            result_path=sfn.JsonPath.DISCARD,
        ).item_processor(
            self._task(
                "ClaimShard",
                "claim",
                {
                    "run_id.$": "$.run_id",
                    "business_date.$": "$.business_date",
                    "cutoff_at.$": "$.cutoff_at",
                    "shard.$": "$.shard",
                },
                result_path="$.claimed",
            )
        )
        plan = self._task("Plan", "plan", run, result_path="$.plan")
        batch = {"run_id.$": "$.run_id", "business_date.$": "$.business_date", "parties.$": "$.parties"}
        settle_batch = (
            self._task("Pay", "pay", batch, result_path=None)
            .next(self._task("WriteStatements", "write_statements", batch, result_path=None))
            # The child's output is its last result, a few bytes ({"parties", "postings"}), not its input
            # (100 party names): the Distributed Map gathers every child's output, 256 KB at most.
            .next(self._task("MarkSettled", "mark_settled", batch, result_path="$"))
        )
        parties = sfn.DistributedMap(
            self,
            "SettleParties",
            item_reader=_ManifestReader(bucket=statements, key=sfn.JsonPath.string_at("$.plan.key")),
            item_selector={
                "run_id.$": "$.run.run_id",
                "business_date.$": "$.run.business_date",
                "parties.$": "$$.Map.Item.Value.parties",
            },
            max_concurrency=BATCH_CONCURRENCY,
            map_execution_type=sfn.StateMachineType.STANDARD,
            # Each child's output is dropped: 1,000 batches of results would not fit a state's payload.
            result_selector={"batches.$": "States.ArrayLength($)"},
            result_path="$.settled",
        ).item_processor(settle_batch)
        close = self._task("Close", "close", {**run, "execution": execution}, result_path="$.closed")
        emit = tasks.EventBridgePutEvents(
            self,
            "EmitCompleted",
            entries=[
                tasks.EventBridgePutEventsEntry(
                    source=EVENT_SOURCE,
                    detail_type=COMPLETED,
                    detail=sfn.TaskInput.from_json_path_at("$.closed"),
                )
            ],
            result_path=sfn.JsonPath.DISCARD,
        )
        emit.add_retry(errors=[sfn.Errors.ALL], **TRANSIENT)

        record_failure = self._task(
            "RecordFailure",
            "record_failure",
            {**run, "execution": execution, "failure.$": "$.failure"},
            result_path=None,
        )
        failed = sfn.Fail(self, "Failed", cause_path="$.failure.Cause", error_path="$.failure.Error")
        record_failure.next(failed)
        for state in (await_clearing, claim, plan, parties, close, emit):
            state.add_catch(record_failure, errors=[sfn.Errors.ALL], result_path="$.failure")

        already = sfn.Succeed(
            self, "AlreadySettledOrOwned", comment="Another execution owns this date's run, or it is closed."
        )
        definition = open_run.next(
            sfn.Choice(self, "Proceed?")
            .when(sfn.Condition.boolean_equals("$.run.proceed", False), already)
            .otherwise(
                await_clearing.next(claim)
                .next(plan)
                .next(parties)
                .next(close)
                .next(emit)
                .next(sfn.Succeed(self, "Settled"))
            )
        )
        logs_group = tenant_log_group(
            self,
            "Logs",
            key=key,
            name=f"{VENDED_LOGS}{Stack.of(self).stack_name}-settlement",
            retention=logs.RetentionDays.ONE_YEAR,
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.hours(6),
            tracing_enabled=True,
            # Never the states' data: it carries amounts and parties, which do not belong in logs.
            logs=sfn.LogOptions(
                destination=logs_group,
                level=sfn.LogLevel(tenant.settlement_log_level),
                include_execution_data=False,
            ),
            comment=f"Settlement of tenant {tenant.name}: one run per settlement date and kind (daily, intraday)",
        )
        # The Distributed Map reads its manifest (and nothing else of the bucket), decrypting with the data key.
        machine.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[statements.arn_for_objects(MANIFESTS)])
        )
        machine.add_to_role_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[key.key_arn]))
        scoped = [
            # The Distributed Map's child executions: Step Functions names them per run.
            executions_of(machine) + ":*",
            executions_of(machine) + "/*:*",
            f"<{_logical_id(statements)}.Arn>/{MANIFESTS}",
            # LambdaInvoke grants each step function by any version or alias (function:{name}:*).
            *(f"<{_logical_id(f)}.Arn>:*" for f in self.functions.values()),
        ]
        Validations.of(machine).acknowledge(
            *(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{resource}]",
                    reason="A wildcard scoped by design to this tenant's settlement: the state machine's own "
                    "child executions, the runs' manifests, or its step functions' versions.",
                )
                for resource in scoped
            ),
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray tracing and log delivery to CloudWatch Logs support no resource-level permissions.",
            ),
            Acknowledgment(
                id="AwsSolutions-SF1",
                reason="The state machine logs ERROR by default (the tenant file's settlement_log_level may "
                "raise it to ALL) and never execution data: states carry amounts and parties, and each step "
                "function logs its own work; X-Ray traces every execution.",
            ),
        )
        return machine

    # -- the schedule ------------------------------------------------------------------------

    def _schedule(self, tenant: Tenant, key: kms.IKey) -> scheduler.Schedule:
        # EventBridge Scheduler (not a rule): its cron is read in the tenant's zone, so "02:00" is
        # 02:00 of the tenant's day, through daylight-saving changes. Fired on X, the run settles X,
        # cut at X's start (coupons.domain.timeline): T+1 of X − 1 is paid on X.
        return self._run_schedule(
            "Schedule",
            f"Daily settlement of tenant {tenant.name} (the day it fires, cut at its start)",
            scheduler.ScheduleExpression.expression(
                tenant.settlement_schedule, time_zone=TimeZone.of(tenant.settlement_time_zone)
            ),
            "DAILY",
            key,
        )

    def _intraday_schedule(self, tenant: Tenant, key: kms.IKey) -> scheduler.Schedule:
        # At the T+0 cut-off in the tenant's zone: the intraday run of that day, cut then. What lands
        # after it (a request in flight at the cut-off) is not lost: the next daily run takes it.
        hour, minute = (int(part) for part in tenant.settlement_t0_cutoff.split(":"))
        return self._run_schedule(
            "IntradaySchedule",
            f"Intraday (T+0) settlement of tenant {tenant.name} at {tenant.settlement_t0_cutoff} local",
            scheduler.ScheduleExpression.cron(
                minute=str(minute), hour=str(hour), time_zone=TimeZone.of(tenant.settlement_time_zone)
            ),
            "INTRADAY",
            key,
        )

    def _run_schedule(
        self, name: str, description: str, expression: scheduler.ScheduleExpression, kind: str, key: kms.IKey
    ) -> scheduler.Schedule:
        return scheduler.Schedule(
            self,
            name,
            description=description,
            schedule=expression,
            target=scheduler_targets.StepFunctionsStartExecution(
                self.state_machine,
                input=scheduler.ScheduleTargetInput.from_object(
                    {"scheduled_at": scheduler.ContextAttribute.scheduled_time, "kind": kind}
                ),
                dead_letter_queue=self.schedule_dead_letters,
            ),
            key=key,
        )

    def _heartbeat_schedule(self, tenant: Tenant, key: kms.IKey) -> scheduler.Schedule:
        hour, minute = (int(part) for part in tenant.settlement_deadline.split(":"))
        role = iam.Role(
            self,
            "HeartbeatScheduleRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description=f"The settlement deadline check's schedule invokes the check ({tenant.name})",
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(self.heartbeat)}.Arn>:*]",
                reason="The scheduler's Lambda target is granted the deadline check function by any version "
                "or alias (function:{name}:*): that one function of this tenant, nothing else.",
            )
        )
        return scheduler.Schedule(
            self,
            "HeartbeatSchedule",
            description=f"Settlement deadline check of tenant {tenant.name} ({tenant.settlement_deadline} local)",
            schedule=scheduler.ScheduleExpression.cron(
                minute=str(minute), hour=str(hour), time_zone=TimeZone.of(tenant.settlement_time_zone)
            ),
            target=scheduler_targets.LambdaInvoke(
                self.heartbeat,
                role=role,
                input=scheduler.ScheduleTargetInput.from_object(
                    {"scheduled_at": scheduler.ContextAttribute.scheduled_time}
                ),
                dead_letter_queue=self.schedule_dead_letters,
            ),
            key=key,
        )


def _logical_id(construct: Construct) -> str:
    return Stack.of(construct).get_logical_id(construct.node.default_child)


def executions_of(machine: sfn.StateMachine) -> str:
    """The executions of a state machine, as cdk-nag spells CDK's ARN of them (for acknowledgments)."""
    name = json.dumps(
        {"Fn::Select": [6, {"Fn::Split": [":", {"Ref": _logical_id(machine)}]}]}, separators=(",", ":")
    )
    return f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}"
