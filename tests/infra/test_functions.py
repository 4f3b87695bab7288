"""Functions: a role each that holds only what the function needs, its own log group, tracing, settings."""

from __future__ import annotations

import json

import pytest

from coupons.data.schema import MAIN
from coupons.data.secrets import ENV_VAR as TENANT_SECRET_ENV
from infra.constructs.instant import instant_environment
from infra.tenants import load_tenant
from tests.infra.conftest import resources, settlement_machine

pytestmark = pytest.mark.xdist_group("infra")


def _role_of(function: dict) -> str:
    return function["Properties"]["Role"]["Fn::GetAtt"][0]


def _statements(template: dict, role_id: str) -> list[dict]:
    """Every statement granted to a role: its inline policies and any AWS::IAM::Policy attached to it."""
    role = template["Resources"][role_id]["Properties"]
    found = [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.fixture
def api_function(template: dict) -> tuple[str, dict]:
    logical_id = template["Outputs"]["ApiFunctionName"]["Value"]["Ref"]
    return logical_id, template["Resources"][logical_id]


def test_each_function_has_a_role_of_its_own_assumed_only_by_lambda(template: dict):
    functions = resources(template, "AWS::Lambda::Function")
    roles = [_role_of(f) for f in functions.values()]
    assert functions
    assert len(set(roles)) == len(roles)
    for role_id in roles:
        role = template["Resources"][role_id]["Properties"]
        (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert "ManagedPolicyArns" not in role


def test_every_function_is_traced_on_arm64_python_311_with_both_layers(template: dict):
    for function in resources(template, "AWS::Lambda::Function").values():
        props = function["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] == "python3.11"
        layers = {ref["Ref"] for ref in props["Layers"]}
        assert layers == set(resources(template, "AWS::Lambda::LayerVersion"))


def test_every_function_logs_to_its_own_retained_log_group_and_may_write_nowhere_else(template: dict):
    for function in resources(template, "AWS::Lambda::Function").values():
        group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        group = template["Resources"][group_id]
        assert group["Properties"]["RetentionInDays"] > 0
        assert group["DeletionPolicy"] == "Retain"
        log_statements = [
            s
            for s in _statements(template, _role_of(function))
            if any(a.startswith("logs:") for a in _listed(s["Action"]))
        ]
        assert log_statements
        for statement in log_statements:
            assert statement["Resource"] == {"Fn::GetAtt": [group_id, "Arn"]}


def test_the_api_function_is_configured_for_its_tenant(
    tenant: str, template: dict, api_function: tuple[str, dict]
):
    settings = load_tenant(tenant)
    props = api_function[1]["Properties"]
    assert props["Handler"] == "handler.lambda_handler"
    assert props["MemorySize"] == 512
    assert props["Timeout"] == 29
    variables = props["Environment"]["Variables"]
    (secret_id,) = resources(template, "AWS::SecretsManager::Secret")
    machine_id, _ = settlement_machine(template)
    (bucket_id,) = [b for b in resources(template, "AWS::S3::Bucket") if b.startswith("StorageStatements")]
    (audit_queue,) = [q for q in resources(template, "AWS::SQS::Queue") if q.startswith("AuditCalls")]
    (audit_bucket,) = [b for b in resources(template, "AWS::S3::Bucket") if b.startswith("AuditHeads")]
    assert variables == {
        "SETTLEMENT_STATE_MACHINE_ARN": {"Ref": machine_id},
        # Each call's audit record goes to this queue; the published heads are read from this bucket.
        "AUDIT_QUEUE_URL": {"Ref": audit_queue},
        "AUDIT_BUCKET": {"Ref": audit_bucket},
        "RECONCILIATION_FOUR_EYES": "true" if settings.reconciliation_four_eyes else "false",
        # An admin's intraday run is cut at the tenant's T+0 cut-off (coupons.domain.timeline).
        **({"SETTLEMENT_T0_CUTOFF": settings.settlement_t0_cutoff} if settings.settlement_t0_cutoff else {}),
        # A resolution's journal books an accepted fee to the tenant's fee bearer; orders against coupons.
        "RECONCILIATION_FEE_BEARER": settings.reconciliation_policy.fee_bearer,
        "ORDER_OUTCOME_GRACE_HOURS": str(settings.order_outcome_grace_hours),
        # A merchant's settlement mode defaults to the tenant's (issue #15 point 1, docs/instant.md).
        **instant_environment(settings),
        "STATEMENTS_BUCKET_NAME": {"Ref": bucket_id},
        "TENANT": tenant,
        "TENANT_TIME_ZONE": settings.settlement_time_zone,
        TENANT_SECRET_ENV: {"Ref": secret_id},
        MAIN.env_var: {"Ref": MAIN.logical_id},
        "API_KEY_CACHE_SECONDS": str(settings.api_key_cache_seconds),
        "IDEMPOTENCY_TTL_SECONDS": "172800",
        "HOLD_SECONDS": str(settings.hold_seconds),  # issue #15: a redemption hold's default life
        "POWERTOOLS_SERVICE_NAME": "coupons",
        "POWERTOOLS_METRICS_NAMESPACE": f"CouponClearing/{tenant}",
        "POWERTOOLS_LOG_LEVEL": settings.log_level,
        "LOG_LEVEL": settings.log_level,
    }


def test_the_api_role_reads_the_table_and_its_named_indexes_and_writes_only_the_tables_items(
    template: dict, api_function
):
    statements = _statements(template, _role_of(api_function[1]))
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in _listed(s["Action"]))]
    assert len(dynamodb) == 2
    reads, writes = dynamodb
    for statement in dynamodb:
        assert not any("*" in action for action in statement["Action"])
    assert {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchGetItem"} == set(reads["Action"])
    assert {"dynamodb:ConditionCheckItem", "dynamodb:PutItem"} <= set(writes["Action"])
    table_arn = {"Fn::GetAtt": [MAIN.logical_id, "Arn"]}
    index_arns = [{"Fn::Join": ["", [table_arn, f"/index/{index.name}"]]} for index in MAIN.indexes]
    assert reads["Resource"] == [table_arn, *index_arns]
    # Writes on items of the table only (never through an index), by partition (test_table_access.py).
    assert writes["Resource"] == table_arn and "dynamodb:LeadingKeys" in json.dumps(writes["Condition"])


def test_the_api_role_uses_only_the_data_key_and_no_wildcard_except_for_xray(template: dict, api_function):
    statements = _statements(template, _role_of(api_function[1]))
    data_key = template["Resources"][MAIN.logical_id]["Properties"]["SSESpecification"]["KMSMasterKeyId"]
    for statement in statements:
        actions = _listed(statement["Action"])
        assert statement["Effect"] == "Allow"
        if any(a.startswith("kms:") for a in actions):
            assert sorted(actions) == ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
            assert statement["Resource"] == data_key
        if statement["Resource"] == "*":
            assert sorted(actions) == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    assert "index/*" not in json.dumps(statements)


def test_layers_are_arm64_python_311(template: dict):
    for layer in resources(template, "AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.11"]
