"""The tables, defined once — by the PynamoDB models (coupons.data.models): this module derives from them
what the CDK constructs build (infra/constructs/tables.py) and what the tests create, so the code and the
infrastructure cannot drift (tests/infra/test_table_models.py compares the synthesized template with them).

Main table (single-table design, every entity keyed by pk/sk; the key strings are the stores'):
  CAMPAIGN#{id}            / CAMPAIGN     gsi1: CAMPAIGNS / {created_at}#{id}
                                          gsi2: BRAND#{brand}#CAMPAIGNS / {created_at}#{id}
  APIKEY#{key_id}          / APIKEY       gsi1: APIKEYS / {created_at}#{key_id}
  IDEMPOTENCY#{principal}#{key} / IDEMPOTENCY    expires_at (TTL)
The stream carries new and old images: clearing reads redemptions and reversals from it (a table
setting, not a model's: declared here).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coupons.data.models.base import BankModel, Base, MainModel


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str
    projection: str = "ALL"


@dataclass(frozen=True)
class TableSchema:
    logical_id: str  # the CloudFormation logical id prefix of the table in every tenant's stack
    env_var: str  # the functions find the table's physical name in this environment variable
    partition_key: str
    sort_key: str
    indexes: tuple[Index, ...] = field(default_factory=tuple)
    stream: str | None = None  # StreamViewType
    ttl_attribute: str | None = None
    attribute_types: tuple[tuple[str, str], ...] = ()  # key attributes' DynamoDB types (S, N, B)

    def key_attributes(self) -> list[str]:
        names = [self.partition_key, self.sort_key]
        for index in self.indexes:
            names += [index.partition_key, index.sort_key]
        return list(dict.fromkeys(names))

    def attribute_type(self, name: str) -> str:
        return dict(self.attribute_types).get(name, "S")

    def create_table_kwargs(self, table_name: str) -> dict:
        """boto3 `create_table` arguments (on-demand), as the CDK table declares them."""
        kwargs: dict = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": self.attribute_type(name)}
                for name in self.key_attributes()
            ],
            "KeySchema": [
                {"AttributeName": self.partition_key, "KeyType": "HASH"},
                {"AttributeName": self.sort_key, "KeyType": "RANGE"},
            ],
        }
        if self.indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_key, "KeyType": "HASH"},
                        {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": index.projection},
                }
                for index in self.indexes
            ]
        if self.stream:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream}
        return kwargs


def _key(key_schema: list[dict], kind: str) -> str:
    return next(k["AttributeName"] for k in key_schema if k["KeyType"] == kind)


def schema_of(model: type[Base], *, logical_id: str, stream: str | None = None) -> TableSchema:
    """The TableSchema of a base model: its keys, its indexes (with projections), its TTL attribute."""
    schema = model._get_schema()
    types = {d["AttributeName"]: d["AttributeType"] for d in schema["attribute_definitions"]}
    indexes = []
    for index in schema["global_secondary_indexes"]:
        types.update({d["AttributeName"]: d["AttributeType"] for d in index["attribute_definitions"]})
        indexes.append(
            Index(
                index["index_name"],
                _key(index["key_schema"], "HASH"),
                _key(index["key_schema"], "RANGE"),
                index["projection"]["ProjectionType"],
            )
        )
    ttl = model._ttl_attribute()
    return TableSchema(
        logical_id=logical_id,
        env_var=model.Meta.env_var,
        partition_key=_key(schema["key_schema"], "HASH"),
        sort_key=_key(schema["key_schema"], "RANGE"),
        indexes=tuple(indexes),
        stream=stream,
        ttl_attribute=ttl.attr_name if ttl is not None else None,
        attribute_types=tuple(sorted(types.items())),
    )


MAIN = schema_of(MainModel, logical_id="MainTable", stream="NEW_AND_OLD_IMAGES")
GSI1, GSI2 = MAIN.indexes

TABLES: tuple[TableSchema, ...] = (MAIN,)

# The simulated bank's own table: a stand-in for the records a real payment channel keeps on its side
# (coupons.channels.simulated). Created only for tenants whose payment channel is `simulated`, so it is
# not in TABLES, which every tenant gets.
BANK = schema_of(BankModel, logical_id="SimulatedBankTable")
