"""Alarms on what must never happen quietly, sent to an encrypted topic (mailed where the tenant asks)."""

from __future__ import annotations

import pytest

from infra.tenants import load_tenant
from tests.infra.conftest import only, resources

pytestmark = pytest.mark.xdist_group("infra")


def test_api_5xx_function_errors_throttles_stream_lag_and_dead_letters_raise_alarms_to_the_topic(
    template: dict,
):
    topic_id, _ = only(template, "AWS::SNS::Topic")
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    watched = sorted((a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms)
    # Errors and throttles of each function (API, clearing); the clearing stream's lag and its DLQ.
    assert watched == sorted(
        [
            ("AWS/ApiGateway", "5XXError"),
            *[("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles")] * 2,
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


def test_alarms_are_mailed_only_where_the_tenant_file_names_an_address(tenant: str, template: dict):
    email = load_tenant(tenant).alarm_email
    subscriptions = [s["Properties"] for s in resources(template, "AWS::SNS::Subscription").values()]
    expected = [email] if email else []
    assert [s["Endpoint"] for s in subscriptions if s["Protocol"] == "email"] == expected
