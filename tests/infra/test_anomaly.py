"""The anomaly detector's function (issue #18 point 7): a consumer of the main table's stream wired as
clearing and the audit log are (infra/constructs/stream_consumer.py), fed redemption INSERTs only."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import resources

pytestmark = pytest.mark.xdist_group("infra")


def _by_prefix(template: dict, kind: str, prefix: str) -> tuple[str, dict]:
    (found,) = [(k, r) for k, r in resources(template, kind).items() if k.startswith(prefix)]
    return found


def test_the_detector_reads_the_stream_with_its_own_filter_retries_and_dead_letter_queue(template: dict):
    _, mapping = _by_prefix(template, "AWS::Lambda::EventSourceMapping", "AnomalyStreamMapping")
    props = mapping["Properties"]
    function_id, _ = _by_prefix(template, "AWS::Lambda::Function", "AnomalyHandlerFunction")
    queue_id, _ = _by_prefix(template, "AWS::SQS::Queue", "AnomalyDeadLetters")
    assert props["FunctionName"] == {"Ref": function_id}
    assert (props["BatchSize"], props["MaximumRetryAttempts"], props["ParallelizationFactor"]) == (100, 5, 1)
    assert props["BisectBatchOnFunctionError"] is True and props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["StartingPosition"] == "TRIM_HORIZON" and props["MaximumRecordAgeInSeconds"] == 86400
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    patterns = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    assert patterns == [
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["REDEMPTION"]}}}},
        {
            "eventName": ["MODIFY"],
            "dynamodb": {"OldImage": {"kind": {"S": ["HOLD"]}}, "NewImage": {"kind": {"S": ["REDEMPTION"]}}},
        },
    ]


def test_the_detector_is_alarmed_like_every_stream_consumer(template: dict):
    names = [a["Properties"]["AlarmName"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    for suffix in ("AnomalyErrors", "AnomalyThrottles", "AnomalyIteratorAge", "AnomalyDeadLetters"):
        assert any(str(n).endswith(f"-{suffix}") for n in names), suffix
