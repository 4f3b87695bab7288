"""Alarms on what must never happen quietly, sent to an encrypted topic (mailed where the tenant asks)."""

from __future__ import annotations

import json
import re

import pytest

from infra import REPO_ROOT
from infra.constructs.settlement import STEPS
from infra.stack import stack_name
from infra.tenants import load_tenant
from tests.infra.conftest import only, resources, settlement_machine

pytestmark = pytest.mark.xdist_group("infra")


def test_api_5xx_function_errors_throttles_stream_lag_dead_letters_and_settlement_raise_alarms_to_the_topic(
    tenant: str, template: dict
):
    topic_id, _ = only(template, "AWS::SNS::Topic")
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    watched = sorted((a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms)
    # Errors and throttles of each function (API, clearing); the clearing stream's lag and its DLQ;
    # settlement's executions, the errors of each step and of the deadline check, the schedules' DLQ and
    # the deadline heartbeat.
    assert watched == sorted(
        [
            ("AWS/ApiGateway", "5XXError"),
            *[("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles")] * 2,
            ("AWS/Lambda", "IteratorAge"),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            ("AWS/States", "ExecutionsFailed"),
            ("AWS/States", "ExecutionsTimedOut"),
            ("AWS/States", "ExecutionsAborted"),
            *[("AWS/Lambda", "Errors")] * (len(STEPS) + 1),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            (f"CouponClearing/{tenant}", "SettlementOverdue"),
            # The audit function (errors, throttles, stream lag, its DLQ) and the head signer (errors, throttles).
            *[("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles")] * 2,
            ("AWS/Lambda", "IteratorAge"),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            # reconciliation: its executions, its start function, overdue exceptions, suspense
            ("AWS/States", "ExecutionsFailed"),
            ("AWS/Lambda", "Errors"),
            (f"CouponClearing/{tenant}", "ReconciliationExceptionsOverdue"),
            (f"CouponClearing/{tenant}", "ReconciliationSuspense"),
            # the anomaly detector (issue #18): errors, throttles, stream lag, its DLQ
            ("AWS/Lambda", "Errors"),
            ("AWS/Lambda", "Throttles"),
            ("AWS/Lambda", "IteratorAge"),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            # issue #15: the redemption holds' expiry sweep (errors, throttles)
            ("AWS/Lambda", "Errors"),
            ("AWS/Lambda", "Throttles"),
            # issue #15 point 1: the instant payout function (errors, throttles, stream lag, its DLQ)
            ("AWS/Lambda", "Errors"),
            ("AWS/Lambda", "Throttles"),
            ("AWS/Lambda", "IteratorAge"),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ]
    )
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching"


def test_the_alarm_topic_is_encrypted_with_a_rotating_key_cloudwatch_may_use(template: dict):
    _, topic = only(template, "AWS::SNS::Topic")
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = template["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    principals = [s["Principal"] for s in key["KeyPolicy"]["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals


def test_alarms_are_mailed_to_every_address_the_tenant_file_names(tenant: str, template: dict):
    emails = load_tenant(tenant).alarm_emails
    subscriptions = [s["Properties"] for s in resources(template, "AWS::SNS::Subscription").values()]
    assert sorted(s["Endpoint"] for s in subscriptions if s["Protocol"] == "email") == sorted(emails)


def test_several_alarm_addresses_are_accepted_and_acme_names_two():
    assert len(load_tenant("acme").alarm_emails) == 2
    assert load_tenant("demo").alarm_emails == ()


def test_cloudwatch_alarms_of_this_account_only_may_publish_to_the_topic_and_only_over_tls(template: dict):
    topic_id, _ = only(template, "AWS::SNS::Topic")
    _, policy = only(template, "AWS::SNS::TopicPolicy")
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allow) == 1
    (publish,) = allow
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Action"] == "sns:Publish"
    assert publish["Resource"] == {"Ref": topic_id}
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert ":alarm:*" in json.dumps(publish["Condition"]["ArnLike"]["aws:SourceArn"])
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert [s["Condition"] for s in deny] == [{"Bool": {"aws:SecureTransport": "false"}}]


def test_settlement_execution_alarms_watch_the_state_machine_and_step_alarms_each_step(template: dict):
    machine_id, _ = settlement_machine(template)
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    states = [a for a in alarms if a["Namespace"] == "AWS/States" and a["AlarmName"].split("-")[-1].startswith("Settlement")]
    assert len(states) == 3
    for alarm in states:
        assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}]
    step_functions = {
        lid
        for lid, f in resources(template, "AWS::Lambda::Function").items()
        if lid.startswith("SettlementSteps")
    }
    watched = {
        a["Dimensions"][0]["Value"]["Ref"]
        for a in alarms
        if a["Namespace"] == "AWS/Lambda" and a["MetricName"] == "Errors"
    }
    assert len(step_functions) == len(STEPS) + 1  # the steps and the deadline check
    assert step_functions <= watched


def test_the_schedules_send_what_they_could_not_start_to_an_alarmed_dead_letter_queue(template: dict):
    schedules = resources(template, "AWS::Scheduler::Schedule").values()
    # The daily run, the intraday run (a tenant with a T+0 cut-off: every tenant here), the deadline check.
    assert len(schedules) == 3
    queues = {s["Properties"]["Target"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] for s in schedules}
    (queue_id,) = queues
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    assert any(
        a["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
        for a in alarms
    )


def test_the_heartbeat_checks_at_the_tenant_s_deadline_in_its_zone_and_alarms_on_overdue(
    tenant: str, template: dict
):
    settings = load_tenant(tenant)
    hour, minute = (int(p) for p in settings.settlement_deadline.split(":"))
    (check,) = [
        s["Properties"]
        for s in resources(template, "AWS::Scheduler::Schedule").values()
        if "StateMachine" not in json.dumps(s["Properties"]["Target"]["Arn"])
    ]
    assert check["ScheduleExpression"] == f"cron({minute} {hour} * * ? *)"
    assert check["ScheduleExpressionTimezone"] == settings.settlement_time_zone
    function_id = check["Target"]["Arn"]["Fn::GetAtt"][0]
    assert template["Resources"][function_id]["Properties"]["Handler"] == "handler.lambda_handler"
    (overdue,) = [
        a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "SettlementOverdue"
    ]
    assert overdue["Dimensions"] == [
        {"Name": "service", "Value": "coupons"},
        {"Name": "tenant", "Value": tenant},
    ]
    assert overdue["Statistic"] == "Maximum" and overdue["Threshold"] == 1


def test_every_alarm_is_named_after_its_stack_and_has_a_section_in_the_runbook(tenant: str, template: dict):
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text()
    sections = set(re.findall(r"^### `([A-Za-z0-9]+)`", runbook, flags=re.M))
    names = [a["Properties"]["AlarmName"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    prefix = f"{stack_name(tenant)}-"
    assert all(name.startswith(prefix) for name in names)
    missing = sorted(name.removeprefix(prefix) for name in names if name.removeprefix(prefix) not in sections)
    assert missing == []
