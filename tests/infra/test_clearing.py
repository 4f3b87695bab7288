"""Clearing: the stream mapping (filtered, partial failures, bisect, bounded retries, DLQ), the DLQ and its
alarms, and a role that may do exactly what clearing does."""

from __future__ import annotations

import json

import pytest

from coupons.data.schema import MAIN
from infra.constructs.function import calendar_environment
from infra.constructs.instant import flush_environment
from infra.tenants import load_tenant
from tests.infra.conftest import only, resources
from tests.infra.test_functions import _listed, _role_of, _statements

pytestmark = pytest.mark.xdist_group("infra")

TABLE_ARN = {"Fn::GetAtt": [MAIN.logical_id, "Arn"]}
STREAM_ARN = {"Fn::GetAtt": [MAIN.logical_id, "StreamArn"]}


@pytest.fixture
def clearing_function(template: dict) -> tuple[str, dict]:
    logical_id = template["Outputs"]["ClearingFunctionName"]["Value"]["Ref"]
    return logical_id, template["Resources"][logical_id]


@pytest.fixture
def mapping(template: dict) -> dict:
    # Clearing's (the audit function has a stream mapping and a queue mapping of its own: test_audit.py).
    (found,) = [m for k, m in resources(template, "AWS::Lambda::EventSourceMapping").items() if k.startswith("Clearing")]
    return found["Properties"]


@pytest.fixture
def dlq(template: dict) -> tuple[str, dict]:
    # The clearing mapping's on-failure queue (the other is the settlement schedules' dead letters).
    queues = {k: q for k, q in resources(template, "AWS::SQS::Queue").items() if k.startswith("Clearing")}
    assert len(queues) == 1
    return next(iter(queues.items()))


def _data_key(template: dict) -> dict:
    return template["Resources"][MAIN.logical_id]["Properties"]["SSESpecification"]["KMSMasterKeyId"]


def test_the_main_table_stream_feeds_the_clearing_function_from_the_oldest_record(
    template: dict, clearing_function, mapping: dict
):
    assert mapping["FunctionName"] == {"Ref": clearing_function[0]}
    assert mapping["EventSourceArn"] == STREAM_ARN
    assert template["Resources"][MAIN.logical_id]["Properties"]["StreamSpecification"] == {
        "StreamViewType": "NEW_AND_OLD_IMAGES"
    }
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BatchSize"] == 100
    # One batch per shard at a time: a shard's records (one item's history) are cleared in order.
    assert mapping["ParallelizationFactor"] == 1
    assert mapping.get("Enabled", True) is True


def test_only_inserted_redemptions_and_reversals_and_holds_captured_in_place_reach_the_function(
    mapping: dict,
):
    patterns = [json.loads(c["Pattern"]) for c in mapping["FilterCriteria"]["Filters"]]
    assert patterns == [
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["REDEMPTION", "REVERSAL"]}}}},
        {
            "eventName": ["MODIFY"],
            "dynamodb": {"OldImage": {"kind": {"S": ["HOLD"]}}, "NewImage": {"kind": {"S": ["REDEMPTION"]}}},
        },
    ]


def test_failures_are_per_record_bisected_bounded_and_end_in_the_dead_letter_queue(mapping: dict, dlq):
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert 1 <= mapping["MaximumRetryAttempts"] <= 10
    assert 60 <= mapping["MaximumRecordAgeInSeconds"] <= 24 * 3600
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [dlq[0], "Arn"]}}}


def test_the_dead_letter_queue_is_encrypted_with_the_data_key_retained_kept_14_days_tls_only(
    template: dict, dlq
):
    queue_id, queue = dlq
    assert queue["DeletionPolicy"] == "Retain" and queue["UpdateReplacePolicy"] == "Retain"
    assert queue["Properties"]["KmsMasterKeyId"] == _data_key(template)
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    (policy,) = [
        p
        for p in resources(template, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert template["Outputs"]["ClearingDlqUrl"]["Value"] == {"Ref": queue_id}


def test_a_message_in_the_dead_letter_queue_and_clearing_errors_raise_alarms_to_the_topic(
    template: dict, clearing_function, dlq
):
    topic_id, _ = only(template, "AWS::SNS::Topic")
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    (on_dlq,) = [
        a
        for a in alarms
        if a["Namespace"] == "AWS/SQS" and a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] == dlq[0]
    ]
    assert on_dlq["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert on_dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq[0], "QueueName"]}}]
    assert (on_dlq["Threshold"], on_dlq["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    on_function = {
        a["MetricName"]: a
        for a in alarms
        if a["Namespace"] == "AWS/Lambda"
        and a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": clearing_function[0]}}]
    }
    assert set(on_function) == {"Errors", "Throttles", "IteratorAge"}
    assert on_function["Errors"]["Threshold"] == 1
    assert on_function["IteratorAge"]["Statistic"] == "Maximum"
    for alarm in [on_dlq, *on_function.values()]:
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_the_clearing_function_is_configured_for_its_tenant(tenant: str, clearing_function):
    settings = load_tenant(tenant)
    props = clearing_function[1]["Properties"]
    assert props["Handler"] == "handler.lambda_handler"
    # A batch of 100 records, a few DynamoDB calls each, fits well inside.
    assert props["Timeout"] == 60
    assert props["Environment"]["Variables"] == {
        "TENANT": tenant,
        "TENANT_TIME_ZONE": settings.settlement_time_zone,
        # The tenant's holiday calendar, when it has one (acme: Berlin): T+N in business days.
        **calendar_environment(settings),
        # The instant terms, on a tenant with a flush threshold only (demo): clearing counts toward it.
        **flush_environment(settings),
        MAIN.env_var: {"Ref": MAIN.logical_id},
        "POWERTOOLS_SERVICE_NAME": "coupons",
        "POWERTOOLS_METRICS_NAMESPACE": f"CouponClearing/{tenant}",
        "POWERTOOLS_LOG_LEVEL": settings.log_level,
        "LOG_LEVEL": settings.log_level,
    }


def test_the_clearing_role_may_do_exactly_what_clearing_does(template: dict, clearing_function, dlq):
    statements = _statements(template, _role_of(clearing_function[1]))
    granted = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        # The one condition: its writes only on its own items (test_table_access.py).
        assert "Condition" not in statement or set(statement["Condition"]) == {
            "ForAllValues:StringLike",
            "Null",
        }
        for action in _listed(statement["Action"]):
            granted.setdefault(action, []).append(statement["Resource"])
    log_group = clearing_function[1]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    expected = {
        # Items: journals read and written, rules read; postings and balances in TransactWriteItems.
        **{
            f"dynamodb:{a}": [TABLE_ARN]
            for a in ("GetItem", "PutItem", "UpdateItem", "ConditionCheckItem", "Query")
        },
        # The poller reads the table's stream, and nothing else's.
        **{
            f"dynamodb:{a}": [STREAM_ARN]
            for a in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")
        },
        # The table, its stream and the DLQ are encrypted with the data key.
        **{f"kms:{a}": [_data_key(template)] for a in ("Decrypt", "Encrypt", "GenerateDataKey")},
        "sqs:SendMessage": [{"Fn::GetAtt": [dlq[0], "Arn"]}],
        "logs:CreateLogStream": [{"Fn::GetAtt": [log_group, "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": [log_group, "Arn"]}],
        # Active tracing (acknowledged cdk-nag finding: X-Ray has no resource-level permissions).
        "xray:PutTraceSegments": ["*"],
        "xray:PutTelemetryRecords": ["*"],
    }
    assert granted == expected
    # No delete, no scan, no index, no secret.
    assert "index/" not in json.dumps(statements)
