"""Reconciliation's resources as synthesized: the statements bucket's EventBridge notifications, the rule
on Object Created under channel-statements/ targeting the Start function, the Standard state machine's
path (chunked compensation, events), and the alarms. moto does not deliver S3 → EventBridge, so the
local stack routes the same event (infra/local) and these assert the real resources."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import resources

pytestmark = pytest.mark.xdist_group("infra")


def _machine(template: dict) -> tuple[str, dict]:
    [(lid, machine)] = [(lid, r) for lid, r in resources(template, "AWS::StepFunctions::StateMachine").items()
                        if lid.startswith("Reconciliation")]  # fmt: skip
    return lid, machine


def _definition(template: dict) -> dict:
    parts = _machine(template)[1]["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "<token>" for p in parts))


def test_the_statements_bucket_sends_its_object_events_to_eventbridge(template: dict):
    [bucket] = [b for lid, b in resources(template, "AWS::S3::Bucket").items() if lid.startswith("StorageStatements")]
    assert bucket["Properties"]["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_a_rule_on_object_created_under_channel_statements_starts_the_start_function(template: dict):
    [rule] = [r for lid, r in resources(template, "AWS::Events::Rule").items() if lid.startswith("ReconciliationStatementArrived")]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": [{"prefix": "channel-statements/"}]}
    [target] = rule["Properties"]["Targets"]
    start = target["Arn"]["Fn::GetAtt"][0]
    assert start.startswith("ReconciliationStarter")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8


def test_the_start_function_may_only_start_the_reconciliation_state_machine(template: dict):
    machine_id, _ = _machine(template)
    [starter] = [f for lid, f in resources(template, "AWS::Lambda::Function").items() if lid.startswith("ReconciliationStarter")]
    assert starter["Properties"]["Environment"]["Variables"]["RECONCILIATION_STATE_MACHINE_ARN"] == {"Ref": machine_id}


def test_the_run_goes_start_match_compensate_in_chunks_complete_and_emits_its_events(template: dict):
    machine = _machine(template)[1]
    assert machine["Properties"]["StateMachineType"] == "STANDARD"
    states = _definition(template)["States"]
    assert states["Start"]["Next"] == "Proceed?"
    # A file not in id order: MatchBucket per hash bucket (looped), then Settle; one in order: Compensate.
    assert states["Match"]["Next"] == "MoreBuckets?"
    buckets = states["MoreBuckets?"]
    assert [(c["Variable"], c["Next"]) for c in buckets["Choices"]] == [
        ("$.cursor.more_buckets", "MatchBucket"), ("$.cursor.settle", "Settle")]  # fmt: skip
    assert buckets["Default"] == "Compensate"
    assert states["MatchBucket"]["Next"] == "MoreBuckets?" and states["Settle"]["Next"] == "Compensate"
    assert states["MatchBucket"]["Parameters"]["bucket.$"] == "$.cursor.next_bucket"
    assert states["Compensate"]["Next"] == "MoreToCompensate?"
    loop = states["MoreToCompensate?"]
    assert loop["Choices"][0]["Next"] == "Compensate" and loop["Default"] == "Complete"
    assert states["Complete"]["Next"] == "EmitCompleted"
    assert states["EmitCompleted"]["Parameters"]["Entries"][0]["DetailType"] == "ReconciliationCompleted"
    opened = states["EmitOpenedExceptions"]["ItemProcessor"]["States"]["EmitOpened"]
    assert opened["Parameters"]["Entries"][0]["DetailType"] == "ReconciliationExceptionOpened"


def test_alarms_watch_overdue_exceptions_and_any_suspense_balance(template: dict):
    alarms = {a["Properties"]["AlarmName"].split("-")[-1]: a["Properties"]
              for a in resources(template, "AWS::CloudWatch::Alarm").values()}  # fmt: skip
    for name in ("ReconciliationExceptionsOverdue", "ReconciliationSuspense"):
        assert alarms[name]["MetricName"] == name
        assert alarms[name]["Threshold"] == 1
    assert "ReconciliationExecutionsFailed" in alarms


def test_the_steps_read_statement_files_and_write_only_reports(template: dict):
    from tests.infra.test_functions import _listed, _role_of, _statements

    [steps] = [f for lid, f in resources(template, "AWS::Lambda::Function").items() if lid.startswith("ReconciliationSteps")]
    s3 = [st for st in _statements(template, _role_of(steps)) if any(a.startswith("s3:") for a in _listed(st["Action"]))]
    scoped = {tuple(sorted(_listed(st["Action"]))): _listed(st["Resource"])[0]["Fn::Join"][1][-1] for st in s3}
    assert scoped == {("s3:GetObject", "s3:GetObjectVersion"): "/channel-statements/*",
                      ("s3:GetObject", "s3:PutObject"): "/reconciliation-runs/*"}  # fmt: skip


def test_the_steps_function_reads_each_channels_statement_format_from_the_tenant_file(tenant: str, template: dict):
    from infra.tenants import load_tenant

    [steps] = [f for lid, f in resources(template, "AWS::Lambda::Function").items() if lid.startswith("ReconciliationSteps")]
    formats = json.loads(steps["Properties"]["Environment"]["Variables"]["RECONCILIATION_STATEMENT_FORMATS"])

    assert formats == load_tenant(tenant).reconciliation_statement_formats
    if tenant == "demo":  # its file names WeChat Pay's trade bill for the wechatpay channel
        assert formats == {"wechatpay": "wechatpay-tradebill"}


def _steps_id(template: dict) -> str:
    (steps_id,) = [
        k for k, r in resources(template, "AWS::Lambda::Function").items()
        if k.startswith("ReconciliationSteps")
    ]  # fmt: skip
    return steps_id


def test_a_rule_runs_post_resolutions_every_five_minutes_so_finances_resend_goes_out_without_waiting_for_a_file(
    template: dict,
):
    (rule,) = [
        r for k, r in resources(template, "AWS::Events::Rule").items()
        if k.startswith("ReconciliationResolutionsSchedule")
    ]  # fmt: skip
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_steps_id(template), "Arn"]}
    assert json.loads(target["Input"]) == {"step": "post_resolutions"}


def test_the_local_stack_fires_the_resolutions_rule_with_its_input(template: dict):
    from infra.local.schedules import schedules

    physical = {k: f"fn-{k}" for k in template["Resources"]}
    found = {s.rule.rstrip("0123456789ABCDEF"): s for s in schedules(template, physical)}
    (resolutions,) = [s for rule, s in found.items() if rule.startswith("ReconciliationResolutionsSchedule")]
    assert resolutions.seconds == 300
    ((name, payload),) = resolutions.targets
    assert (name, json.loads(payload)) == (f"fn-{_steps_id(template)}", {"step": "post_resolutions"})
