"""The main table is the schema in coupons.data.schema, with production safeguards on."""

from __future__ import annotations

import pytest

from coupons.data.schema import MAIN
from tests.infra.conftest import resources

pytestmark = pytest.mark.xdist_group("infra")


@pytest.fixture
def table(template: dict) -> dict:
    # The schema names the logical id, and the stack keeps it.
    return template["Resources"][MAIN.logical_id]


def test_the_main_table_declares_exactly_what_the_schema_creates(table: dict):
    expected = MAIN.create_table_kwargs("any-name")
    props = table["Properties"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert props["KeySchema"] == expected["KeySchema"]
    assert props["AttributeDefinitions"] == expected["AttributeDefinitions"]
    assert props["GlobalSecondaryIndexes"] == expected["GlobalSecondaryIndexes"]
    assert props["BillingMode"] == expected["BillingMode"]
    assert props["StreamSpecification"] == {
        "StreamViewType": expected["StreamSpecification"]["StreamViewType"]
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": MAIN.ttl_attribute, "Enabled": True}


def test_the_functions_find_the_table_under_the_schemas_variable(template: dict):
    for logical_id, function in resources(template, "AWS::Lambda::Function").items():
        if logical_id.startswith("ReconciliationStarter"):
            continue  # starts executions, touches no table
        assert function["Properties"]["Environment"]["Variables"][MAIN.env_var] == {"Ref": MAIN.logical_id}


def test_every_table_is_recoverable_protected_and_retained(template: dict):
    tables = resources(template, "AWS::DynamoDB::Table")
    assert tables
    for table in tables.values():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["DeletionProtectionEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"
        assert table["UpdateReplacePolicy"] == "Retain"


def test_every_table_is_encrypted_with_the_tenants_rotating_retained_key(template: dict):
    for table in resources(template, "AWS::DynamoDB::Table").values():
        sse = table["Properties"]["SSESpecification"]
        assert sse["SSEEnabled"] is True
        assert sse["SSEType"] == "KMS"
        key_id = sse["KMSMasterKeyId"]["Fn::GetAtt"][0]
        key = template["Resources"][key_id]
        assert key["Type"] == "AWS::KMS::Key"
        assert key["Properties"]["EnableKeyRotation"] is True
        assert key["DeletionPolicy"] == "Retain"
