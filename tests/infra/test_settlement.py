"""Settlement: the Standard state machine's definition as synthesized (steps, Map and Distributed Map, retries
and catches), the schedule in the tenant's zone, the simulated bank's table, and who may touch it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coupons.data.schema import BANK
from infra.constructs.settlement import BATCH_CONCURRENCY, CLAIM_CONCURRENCY
from infra.tenants import load_tenant
from tests.infra.conftest import resources, settlement_machine
from tests.infra.test_functions import _listed, _role_of, _statements

pytestmark = pytest.mark.xdist_group("infra")

CHILD_STEPS = ["Pay", "WriteStatements", "MarkSettled"]


def _definition(template: dict) -> dict:
    """The definition with each token (a step function's ARN, the bucket) replaced by its logical id."""
    _, machine = settlement_machine(template)
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(
        p if isinstance(p, str) else "<" + (p.get("Ref") or p.get("Fn::GetAtt", ["?"])[0]) + ">"
        for p in parts
    )
    return json.loads(text)


@pytest.fixture
def definition(template: dict) -> dict:
    return _definition(template)


def _tasks(states: dict) -> dict[str, dict]:
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        if state["Type"] == "Map":
            found.update(_tasks(state["ItemProcessor"]["States"]))
    return found


def test_the_run_goes_open_wait_claim_plan_settle_close_emit(definition: dict):
    states = definition["States"]
    assert definition["StartAt"] == "Open"
    path, name = [], "Open"
    while name in states and states[name]["Type"] not in ("Succeed", "Fail"):
        path.append(name)
        state = states[name]
        name = state.get("Next") or state.get("Default")
    assert path == [
        "Open",
        "Proceed?",
        "AwaitClearing",
        "ClaimShards",
        "Plan",
        "SettleParties",
        "Close",
        "EmitCompleted",
    ]
    assert states[name]["Type"] == "Succeed"
    # A second execution for a date whose run another execution owns (or that is closed) ends at once.
    (choice,) = states["Proceed?"]["Choices"]
    assert choice == {"Variable": "$.run.proceed", "BooleanEquals": False, "Next": "AlreadySettledOrOwned"}


def test_postings_are_claimed_shard_by_shard_and_parties_settled_in_a_distributed_map(definition: dict):
    states = definition["States"]
    claim = states["ClaimShards"]
    assert claim["ItemsPath"] == "$.run.shards" and claim["MaxConcurrency"] >= 1
    parties = states["SettleParties"]
    assert parties["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert parties["ItemReader"]["Resource"] == "arn:<AWS::Partition>:states:::s3:getObject"
    assert parties["ItemReader"]["Parameters"]["Key.$"] == "$.plan.key"
    assert parties["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    child = parties["ItemProcessor"]
    order, name = [], child["StartAt"]
    while name:
        order.append(name)
        name = child["States"][name].get("Next")
    assert order == CHILD_STEPS
    # The children's results are not gathered into the state (1,000 batches would not fit 256 KB), and
    # each child's output is its last step's small result, not its input's party names.
    assert parties["ResultSelector"] == {"batches.$": "States.ArrayLength($)"}
    assert child["States"]["MarkSettled"]["ResultPath"] == "$"


def test_every_step_retries_transient_errors_with_backoff_and_permanent_ones_never(definition: dict):
    for name, task in _tasks(definition["States"]).items():
        if name == "EmitCompleted":
            continue
        retries = task["Retry"]
        assert retries[0]["MaxAttempts"] == 0 and "TransferRejected" in retries[0]["ErrorEquals"], name
        last = retries[-1]
        assert last["ErrorEquals"] == ["States.ALL"], name
        assert last["BackoffRate"] > 1 and 0 < last["MaxAttempts"] <= 10 and last["MaxDelaySeconds"] <= 300, (
            name
        )
    (wait,) = [
        r for r in definition["States"]["AwaitClearing"]["Retry"] if r["ErrorEquals"] == ["ClearingBehind"]
    ]
    # Bounded: clearing gets half an hour to catch up, then the run fails saying so.
    assert wait["IntervalSeconds"] * wait["MaxAttempts"] * wait.get("BackoffRate", 1) <= 3600


def test_an_instruction_mismatch_from_the_channel_is_permanent_and_never_retried(definition: dict):
    pay = _tasks(definition["States"])["Pay"]
    (permanent,) = [r for r in pay["Retry"] if "InstructionMismatch" in r["ErrorEquals"]]
    assert permanent["MaxAttempts"] == 0
    assert pay["Retry"].index(permanent) == 0  # before States.ALL, which would retry it


def test_a_failure_after_open_is_recorded_on_the_run_and_fails_the_execution(definition: dict):
    states = definition["States"]
    for name in ("AwaitClearing", "ClaimShards", "Plan", "SettleParties", "Close", "EmitCompleted"):
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "RecordFailure"}
        ], name
    assert states["RecordFailure"]["Next"] == "Failed"
    assert states["Failed"] == {
        "Type": "Fail",
        "ErrorPath": "$.failure.Error",
        "CausePath": "$.failure.Cause",
    }


def test_the_completed_run_is_announced_on_eventbridge(definition: dict):
    emit = definition["States"]["EmitCompleted"]
    assert emit["Resource"] == "arn:<AWS::Partition>:states:::events:putEvents"
    (entry,) = emit["Parameters"]["Entries"]
    assert entry["Source"] == "coupons.settlement" and entry["DetailType"] == "SettlementRunCompleted"
    assert entry["Detail.$"] == "$.closed"


def test_the_state_machine_is_standard_traced_and_logs_at_the_tenant_s_level_without_execution_data(
    tenant: str, template: dict
):
    _, machine = settlement_machine(template)
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    # Amounts and parties do not belong in logs; ERROR unless the tenant file says otherwise.
    assert props["LoggingConfiguration"]["Level"] == load_tenant(tenant).settlement_log_level == "ERROR"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_the_state_machine_logs_to_a_vended_logs_group_encrypted_with_the_data_key(
    tenant: str, template: dict
):
    _, machine = settlement_machine(template)
    (destination,) = machine["Properties"]["LoggingConfiguration"]["Destinations"]
    group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    group = template["Resources"][group_id]["Properties"]
    # Under /aws/vendedlogs/states/, Step Functions needs no entry in the account's Logs resource policy.
    assert group["LogGroupName"] == f"/aws/vendedlogs/states/CouponClearing-{tenant}-settlement"
    assert "KmsKeyId" in group  # the data key: test_every_log_group_is_encrypted_...


def test_every_log_group_is_encrypted_with_the_tenant_data_key_which_cloudwatch_logs_may_use(template: dict):
    groups = resources(template, "AWS::Logs::LogGroup")
    (data_key_id,) = [k for k in resources(template, "AWS::KMS::Key") if k.startswith("DataKey")]
    for logical_id, group in groups.items():
        assert group["Properties"].get("KmsKeyId") == {"Fn::GetAtt": [data_key_id, "Arn"]}, logical_id
    policy = template["Resources"][data_key_id]["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in policy if "logs." in json.dumps(s.get("Principal"))]
    assert ":log-group:*" in json.dumps(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])


def test_clearing_and_every_settlement_function_have_reserved_concurrency_from_the_tenant_file(
    tenant: str, template: dict
):
    settings = load_tenant(tenant)
    for logical_id, function in resources(template, "AWS::Lambda::Function").items():
        reserved = function["Properties"].get("ReservedConcurrentExecutions")
        if logical_id.startswith("SettlementSteps"):
            assert reserved == settings.settlement_reserved_concurrency, logical_id
        elif logical_id.startswith("ClearingHandler"):
            assert reserved == settings.clearing_reserved_concurrency
    # The Maps never ask a step for more than it has set aside.
    assert max(CLAIM_CONCURRENCY, BATCH_CONCURRENCY) <= settings.settlement_reserved_concurrency


def test_the_state_machine_may_read_the_runs_manifests_and_nothing_else_of_the_bucket(template: dict):
    machine_id, _ = settlement_machine(template)
    role_id = template["Resources"][machine_id]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    s3 = [s for s in _statements(template, role_id) if "s3:" in json.dumps(s["Action"])]
    assert s3 and all(s["Action"] == "s3:GetObject" for s in s3)
    for statement in s3:
        for resource in _listed(statement["Resource"]):
            assert json.dumps(resource).endswith('"/settlement-runs/*/manifest.json"]]}'), resource


def _run_schedules(template: dict) -> dict[str, dict]:
    """The schedules that start the state machine, by the kind of run they start. (The other schedule
    is the deadline check, test_monitoring.py.) moto's CloudFormation skips AWS::Scheduler::Schedule
    (infra/local/skipped_resources.py): they exist only here, in the template."""
    machine_id, _ = settlement_machine(template)
    found = {}
    for s in resources(template, "AWS::Scheduler::Schedule").values():
        if s["Properties"]["Target"]["Arn"] == {"Ref": machine_id}:
            found[json.loads(s["Properties"]["Target"]["Input"])["kind"]] = s["Properties"]
    return found


def test_the_schedule_starts_a_run_in_the_tenants_zone_with_the_time_it_fired(tenant: str, template: dict):
    settings = load_tenant(tenant)
    props = _run_schedules(template)["DAILY"]
    assert props["ScheduleExpression"] == settings.settlement_schedule
    assert props["ScheduleExpressionTimezone"] == settings.settlement_time_zone
    assert props["State"] == "ENABLED"
    # The run settles the local date it fires on (02:00 on X: X, cut at X's start), a daily run.
    assert json.loads(props["Target"]["Input"]) == {"scheduled_at": "<aws.scheduler.scheduled-time>", "kind": "DAILY"}
    assert "the day it fires" in props["Description"]


def test_the_intraday_schedule_fires_at_the_tenants_t0_cutoff_in_its_zone(tenant: str, template: dict):
    settings = load_tenant(tenant)
    assert settings.settlement_t0_cutoff  # every tenant here names one (acme 22:00 Berlin, demo 22:00 Shanghai)
    hour, minute = (int(p) for p in settings.settlement_t0_cutoff.split(":"))
    props = _run_schedules(template)["INTRADAY"]
    assert props["ScheduleExpression"] == f"cron({minute} {hour} * * ? *)"
    assert props["ScheduleExpressionTimezone"] == settings.settlement_time_zone
    assert props["State"] == "ENABLED"
    assert json.loads(props["Target"]["Input"]) == {
        "scheduled_at": "<aws.scheduler.scheduled-time>", "kind": "INTRADAY",
    }  # fmt: skip
    assert set(_run_schedules(template)) == {"DAILY", "INTRADAY"}
    # The same dead-letter queue and role shape as the daily one.
    daily = _run_schedules(template)["DAILY"]
    assert props["Target"]["DeadLetterConfig"] == daily["Target"]["DeadLetterConfig"]


def test_the_open_step_and_the_api_know_the_t0_cutoff_and_the_machine_passes_the_cutoff_on(
    tenant: str, template: dict, definition: dict
):
    settings = load_tenant(tenant)
    functions = resources(template, "AWS::Lambda::Function")
    knowing = {
        lid for lid, f in functions.items()
        if f["Properties"].get("Environment", {}).get("Variables", {}).get("SETTLEMENT_T0_CUTOFF")
        == settings.settlement_t0_cutoff
    }  # fmt: skip
    assert any(lid.startswith("SettlementStepsOpen") for lid in knowing)
    assert any(lid.startswith("Api") for lid in knowing), sorted(knowing)
    tasks = _tasks(definition["States"])
    assert tasks["AwaitClearing"]["Parameters"]["cutoff_at.$"] == "$.run.cutoff_at"
    assert tasks["ClaimShard"]["Parameters"]["cutoff_at.$"] == "$.cutoff_at"
    assert definition["States"]["ClaimShards"]["ItemSelector"]["cutoff_at.$"] == "$.run.cutoff_at"


def test_only_the_pay_step_may_reach_the_simulated_bank(template: dict):
    bank = template["Resources"][BANK.logical_id]
    assert bank["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert bank["DeletionPolicy"] == "Retain"
    bank_arn = {"Fn::GetAtt": [BANK.logical_id, "Arn"]}
    reaching = []
    for logical_id, function in resources(template, "AWS::Lambda::Function").items():
        for statement in _statements(template, _role_of(function)):
            if bank_arn in _listed(statement["Resource"]):
                reaching.append(logical_id)
                assert sorted(_listed(statement["Action"])) == [
                    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                ]  # fmt: skip
    # Pay sends; reconciliation's steps ask the channel by id (a missing line) and resend or recover; the
    # instant payout function (issue #15 point 1) sends instant payouts and asks by id.
    assert len(reaching) == 3 and sorted(r[:18] for r in reaching) == [
        "InstantHandlerFunc", "ReconciliationStep", "SettlementStepsPay",
    ]  # fmt: skip


def test_the_step_functions_may_write_to_s3_only_under_settlement_runs(template: dict):
    for logical_id, function in resources(template, "AWS::Lambda::Function").items():
        if logical_id.startswith("Reconciliation"):
            continue  # its own prefixes: tests/infra/test_reconciliation.py
        for statement in _statements(template, _role_of(function)):
            for action in _listed(statement["Action"]):
                if action == "s3:ListBucket":  # the API's, to tell a missing statement (404) from a denial
                    assert statement["Condition"] in (
                        {"StringLike": {"s3:prefix": ["settlement-runs/*"]}},
                        {"StringLike": {"s3:prefix": ["heads/*"]}},  # the audit bucket's (test_audit.py)
                    )
                    continue
                if action.startswith("s3:") and action != "s3:GetObject":
                    assert action == "s3:PutObject", logical_id
                    (resource,) = _listed(statement["Resource"])
                    if logical_id.startswith("AuditSigner"):  # the audit heads' bucket, test_audit.py
                        assert resource["Fn::Join"][1][-1] == "/heads/*", logical_id
                        continue
                    assert resource["Fn::Join"][1][-1] == "/settlement-runs/*", logical_id


def test_the_sample_events_carry_what_the_definition_passes_each_step(definition: dict):
    events = Path(__file__).resolve().parents[2] / "events" / "settlement"
    steps = {name: task for name, task in _tasks(definition["States"]).items() if name != "EmitCompleted"}
    folders = {"ClaimShard": "claim", "RecordFailure": "record_failure", "WriteStatements": "write_statements",
               "MarkSettled": "mark_settled", "AwaitClearing": "await_clearing"}  # fmt: skip
    for name, task in steps.items():
        folder = folders.get(name, name.lower())
        sample = json.loads((events / f"{folder}.json").read_text())
        passed = {key.removesuffix(".$") for key in task["Parameters"]}
        assert set(sample) == passed, name
        assert (
            Path(__file__).resolve().parents[2] / "functions" / "settlement" / folder / "handler.py"
        ).is_file()
