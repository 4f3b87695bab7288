"""Instant settlement on the synthesized template: the payout function exists only for a tenant with
`instant_settlement`, fed by the table's stream through a filter and a batching window of at most 60 s
(moto stores but never applies either, so they are asserted here), with its DLQ, alarms and a role that
writes only instant payouts' items."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from coupons.data.schema import MAIN
from infra.tenants import load_tenant
from tests.infra.conftest import resources

pytestmark = pytest.mark.xdist_group("infra")

STREAM_ARN = {"Fn::GetAtt": [MAIN.logical_id, "StreamArn"]}


def _mappings(template: dict) -> dict[str, dict]:
    return {
        k: m
        for k, m in resources(template, "AWS::Lambda::EventSourceMapping").items()
        if k.startswith("Instant")
    }


def test_only_a_tenant_with_instant_settlement_has_the_payout_function(template, tenant):
    terms = load_tenant(tenant).instant_settlement
    assert ("InstantFunctionName" in template["Outputs"]) == (terms is not None)
    assert bool(_mappings(template)) == (terms is not None)


def test_the_payout_mapping_reads_the_stream_through_a_filter_and_a_window_of_at_most_60_seconds(synthesized):
    template = synthesized.templates["demo"]
    Template.from_json(template).has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": STREAM_ARN,
            "MaximumBatchingWindowInSeconds": 60,  # the deployed default: the longest a posting waits
            "BatchSize": 1000,
            "StartingPosition": "TRIM_HORIZON",
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ParallelizationFactor": 1,
            "MaximumRetryAttempts": Match.any_value(),
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
            "FunctionName": {"Ref": Match.string_like_regexp("^InstantHandler")},
        },
    )
    [mapping] = [m for k, m in _mappings(template).items() if k.startswith("InstantStreamMapping")]
    [pattern] = [json.loads(f["Pattern"]) for f in mapping["Properties"]["FilterCriteria"]["Filters"]]
    assert pattern == {
        "eventName": ["INSERT"],
        "dynamodb": {
            "Keys": {"pk": {"S": [{"prefix": "ENTRIES#merchant:"}]}},
            "NewImage": {"source_kind": {"S": ["REDEMPTION"]}},
        },
    }
    # More retries than the payout's own attempts: the last attempt gives the postings back, not the DLQ.
    assert mapping["Properties"]["MaximumRetryAttempts"] > load_tenant("demo").instant_settlement.max_attempts


def test_the_payout_function_gets_its_terms_the_channel_and_may_put_only_its_own_events(synthesized):
    template = synthesized.templates["demo"]
    logical_id = template["Outputs"]["InstantFunctionName"]["Value"]["Ref"]
    variables = template["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
    assert json.loads(variables["INSTANT_SETTLEMENT"])["window_seconds"] == 60
    assert variables["PAYMENT_CHANNEL"] == "simulated" and "BANK_TABLE_NAME" in variables
    policies = [
        p
        for p in resources(template, "AWS::IAM::Role").values()
        if p["Properties"].get("Description", "").startswith("Instant")
    ]
    [role] = policies
    statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    [put] = [s for s in statements if s["Action"] == "events:PutEvents"]
    assert put["Condition"] == {"StringEquals": {"events:source": "coupons.settlement"}}


def test_the_payout_function_has_its_alarms(synthesized):
    alarms = resources(synthesized.templates["demo"], "AWS::CloudWatch::Alarm")
    names = " ".join(json.dumps(a["Properties"].get("AlarmName", "")) for a in alarms.values())
    assert "InstantIteratorAge" in names or any("Instant" in k for k in alarms)


def test_the_threshold_mapping_reads_the_stream_without_a_window_filtered_to_the_totals_crossing(synthesized):
    template = synthesized.templates["demo"]
    assert load_tenant("demo").instant_settlement.flush_threshold  # demo has one (make local shows it)
    [mapping] = [m for k, m in _mappings(template).items() if k.startswith("InstantThresholdMapping")]
    properties = mapping["Properties"]
    assert "MaximumBatchingWindowInSeconds" not in properties  # a crossing is paid at once
    assert properties["EventSourceArn"] == STREAM_ARN
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["DestinationConfig"]["OnFailure"]["Destination"]
    assert properties["FunctionName"]["Ref"].startswith("InstantHandler")
    patterns = [json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]]
    total = {"pk": {"S": [{"prefix": "IPENDING#"}]}, "sk": {"S": ["TOTAL"]}}
    assert patterns == [
        {
            "eventName": ["INSERT"],
            "dynamodb": {"Keys": total, "NewImage": {"remaining": {"N": [{"numeric": ["<=", 0]}]}}},
        },
        {
            "eventName": ["MODIFY"],
            "dynamodb": {
                "Keys": total,
                "OldImage": {"remaining": {"N": [{"numeric": [">", 0]}]}},
                "NewImage": {"remaining": {"N": [{"numeric": ["<=", 0]}]}},
            },
        },
    ]


def test_only_a_tenant_with_a_threshold_gives_clearing_its_instant_terms_and_has_the_second_mapping(
    template, tenant
):
    terms = load_tenant(tenant).instant_settlement
    thresholds = bool(terms and terms.flush_threshold)
    mappings = _mappings(template)
    assert any(k.startswith("InstantThresholdMapping") for k in mappings) == thresholds
    functions = resources(template, "AWS::Lambda::Function")
    [clearing] = [
        f for k, f in functions.items()
        if k.startswith("ClearingHandler") or "Clearing" in f["Properties"].get("Description", "")
    ]  # fmt: skip
    variables = clearing["Properties"]["Environment"]["Variables"]
    assert ("INSTANT_SETTLEMENT" in variables) == thresholds
    if thresholds:
        assert json.loads(variables["INSTANT_SETTLEMENT"])["flush_threshold"] == terms.flush_threshold
