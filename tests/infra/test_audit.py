"""The audit log's infrastructure: the heads bucket's Object Lock (compliance, the tenant's retention), the
signing key (ECC_NIST_P256, SIGN_VERIFY) that only the signer may use, the signer's schedule, and the
audit function's two sources (the stream without the log's own items, the API-call queue)."""

from __future__ import annotations

import json

import pytest

from coupons.data.models.audit import MARKER
from infra.stack import stack_name
from infra.tenants import load_tenant
from tests.infra.conftest import resources
from tests.infra.test_functions import _listed, _role_of, _statements

pytestmark = pytest.mark.xdist_group("infra")


def _by_prefix(template: dict, resource_type: str, prefix: str) -> tuple[str, dict]:
    (found,) = [(k, r) for k, r in resources(template, resource_type).items() if k.startswith(prefix)]
    return found


def test_the_heads_bucket_locks_every_version_in_compliance_mode_for_the_tenants_retention(tenant, template):
    _, bucket = _by_prefix(template, "AWS::S3::Bucket", "AuditHeads")
    props = bucket["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {
            "DefaultRetention": {
                "Mode": "COMPLIANCE",
                "Days": 365 * load_tenant(tenant).audit_retention_years,
            }
        },
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["DeletionPolicy"] == "Retain"


def test_the_signing_key_is_an_asymmetric_p256_signing_key(template):
    _, key = _by_prefix(template, "AWS::KMS::Key", "AuditSigningKey")
    props = key["Properties"]
    assert props["KeySpec"] == "ECC_NIST_P256"
    assert props["KeyUsage"] == "SIGN_VERIFY"
    assert key["DeletionPolicy"] == "Retain"
    assert (
        "EnableKeyRotation" not in props or props["EnableKeyRotation"] is False
    )  # asymmetric keys do not rotate


def test_only_the_signers_role_may_sign_and_nothing_else_of_the_tenant_may(tenant, template):
    key_id, key = _by_prefix(template, "AWS::KMS::Key", "AuditSigningKey")
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    signing = [s for s in statements if "kms:Sign" in _listed(s["Action"]) or "kms:*" in _listed(s["Action"])]
    (sign,) = signing
    signer_id, _ = _by_prefix(template, "AWS::IAM::Role", "AuditSignerRole")
    pattern = json.dumps(sign["Condition"]["ArnLike"]["aws:PrincipalArn"])
    assert f":role/{stack_name(tenant)}-{signer_id[:24]}*" in pattern
    assert sign["Condition"]["StringEquals"] == {"kms:SigningAlgorithm": "ECDSA_SHA_256"}
    # Of every role of the stack, only the signer's allows kms:Sign, and on this key only.
    for logical_id, function in resources(template, "AWS::Lambda::Function").items():
        for statement in _statements(template, _role_of(function)):
            if "kms:Sign" in _listed(statement["Action"]):
                assert logical_id.startswith("AuditSignerFunction")
                assert statement["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_the_signer_runs_on_the_tenants_period(tenant, template):
    _, rule = _by_prefix(template, "AWS::Events::Rule", "AuditSchedule")
    minutes = load_tenant(tenant).audit_head_minutes
    assert rule["Properties"]["ScheduleExpression"] == f"rate({minutes} minute{'s' if minutes > 1 else ''})"
    (target,) = rule["Properties"]["Targets"]
    signer_id = template["Outputs"]["AuditSignerFunctionName"]["Value"]["Ref"]
    assert target["Arn"] == {"Fn::GetAtt": [signer_id, "Arn"]}


def test_the_audit_function_reads_every_change_but_the_logs_own_in_order(template):
    _, mapping = _by_prefix(template, "AWS::Lambda::EventSourceMapping", "AuditStreamMapping")
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["MainTable", "StreamArn"]}
    assert props["ParallelizationFactor"] == 1
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (pattern,) = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    absent = {MARKER: {"S": [{"exists": False}]}}
    assert pattern == {"dynamodb": {"NewImage": absent, "OldImage": absent}}


def test_api_calls_reach_the_audit_function_through_an_encrypted_queue(template):
    queue_id, queue = _by_prefix(template, "AWS::SQS::Queue", "AuditCalls")
    assert "KmsMasterKeyId" in queue["Properties"]
    audit_id = template["Outputs"]["AuditFunctionName"]["Value"]["Ref"]
    (mapping,) = [
        m for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]  # fmt: skip
    assert mapping["Properties"]["FunctionName"] == {"Ref": audit_id}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
