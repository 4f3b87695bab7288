"""The synthesized tables are the PynamoDB models' tables: keys, attribute types, indexes and their
projections, the TTL attribute, the stream (coupons.data.models -> coupons.data.schema -> the CDK)."""

from __future__ import annotations

import pytest

from coupons.data.models.base import BankModel, MainModel
from coupons.data.schema import BANK, MAIN
from tests.infra.conftest import resources

pytestmark = pytest.mark.xdist_group("infra")


def _model_view(model) -> dict:
    """What a model says its table is, in the template's terms."""
    schema = model._get_schema()
    definitions = {d["AttributeName"]: d["AttributeType"] for d in schema["attribute_definitions"]}
    indexes = []
    for index in schema["global_secondary_indexes"]:
        definitions.update({d["AttributeName"]: d["AttributeType"] for d in index["attribute_definitions"]})
        indexes.append(
            {
                "IndexName": index["index_name"],
                "KeySchema": sorted(index["key_schema"], key=lambda k: k["KeyType"]),
                "Projection": index["projection"],
            }
        )
    ttl = model._ttl_attribute()
    return {
        "KeySchema": sorted(schema["key_schema"], key=lambda k: k["KeyType"]),
        "AttributeDefinitions": definitions,
        "GlobalSecondaryIndexes": sorted(indexes, key=lambda i: i["IndexName"]),
        "TTL": ttl.attr_name if ttl is not None else None,
    }


def _template_view(table: dict) -> dict:
    props = table["Properties"]
    return {
        "KeySchema": sorted(props["KeySchema"], key=lambda k: k["KeyType"]),
        "AttributeDefinitions": {d["AttributeName"]: d["AttributeType"] for d in props["AttributeDefinitions"]},
        "GlobalSecondaryIndexes": sorted(
            (
                {
                    "IndexName": i["IndexName"],
                    "KeySchema": sorted(i["KeySchema"], key=lambda k: k["KeyType"]),
                    "Projection": i["Projection"],
                }
                for i in props.get("GlobalSecondaryIndexes", [])
            ),
            key=lambda i: i["IndexName"],
        ),
        "TTL": (props.get("TimeToLiveSpecification") or {}).get("AttributeName"),
    }


def test_the_main_table_of_every_tenant_is_the_main_model_s_table(template: dict):
    table = template["Resources"][MAIN.logical_id]
    assert _template_view(table) == _model_view(MainModel)
    assert table["Properties"]["TimeToLiveSpecification"]["Enabled"] is True
    # Clearing reads the redemption and reversal images from the stream: both images.
    assert table["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_the_simulated_bank_s_table_is_the_bank_model_s_table(synthesized):
    found = [
        t["Resources"][lid]
        for t in synthesized.templates.values()
        for lid in resources(t, "AWS::DynamoDB::Table")
        if lid.startswith(BANK.logical_id)
    ]
    if not found:
        pytest.skip("no tenant uses the simulated payment channel")
    for table in found:
        assert _template_view(table) == _model_view(BankModel)


def test_the_tables_the_tests_create_are_the_models_tables():
    for schema, model in ((MAIN, MainModel), (BANK, BankModel)):
        kwargs = schema.create_table_kwargs("t")
        as_template = {
            "Properties": {
                "KeySchema": kwargs["KeySchema"],
                "AttributeDefinitions": kwargs["AttributeDefinitions"],
                "GlobalSecondaryIndexes": kwargs.get("GlobalSecondaryIndexes", []),
                "TimeToLiveSpecification": {"AttributeName": schema.ttl_attribute} if schema.ttl_attribute else None,
            }
        }
        assert _template_view(as_template) == _model_view(model)
