"""The tables, defined once: the CDK constructs build them from here and the tests create them from here.

Main table (single-table design, every entity keyed by pk/sk):
  CAMPAIGN#{id}            / CAMPAIGN     gsi1: CAMPAIGNS / {created_at}#{id}
                                          gsi2: BRAND#{brand}#CAMPAIGNS / {created_at}#{id}
  APIKEY#{key_id}          / APIKEY       gsi1: APIKEYS / {created_at}#{key_id}
  IDEMPOTENCY#{principal}#{key} / IDEMPOTENCY    expires_at (TTL)
The stream carries new and old images: clearing reads redemptions and reversals from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True)
class TableSchema:
    logical_id: str  # the CloudFormation logical id prefix of the table in every tenant's stack
    env_var: str  # the functions find the table's physical name in this environment variable
    partition_key: str
    sort_key: str
    indexes: tuple[Index, ...] = field(default_factory=tuple)
    stream: str | None = None  # StreamViewType
    ttl_attribute: str | None = None

    def key_attributes(self) -> list[str]:
        names = [self.partition_key, self.sort_key]
        for index in self.indexes:
            names += [index.partition_key, index.sort_key]
        return list(dict.fromkeys(names))

    def create_table_kwargs(self, table_name: str) -> dict:
        """boto3 `create_table` arguments (string keys, on-demand), as the CDK table declares them."""
        kwargs: dict = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": "S"} for name in self.key_attributes()
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
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.indexes
            ]
        if self.stream:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream}
        return kwargs


GSI1 = Index("gsi1", "gsi1pk", "gsi1sk")
GSI2 = Index("gsi2", "gsi2pk", "gsi2sk")

MAIN = TableSchema(
    logical_id="MainTable",
    env_var="MAIN_TABLE_NAME",
    partition_key="pk",
    sort_key="sk",
    indexes=(GSI1, GSI2),
    stream="NEW_AND_OLD_IMAGES",
    ttl_attribute="expires_at",
)

TABLES: tuple[TableSchema, ...] = (MAIN,)

# The simulated bank's own table: a stand-in for the records a real payment channel keeps on its side
# (coupons.channels.simulated). Created only for tenants whose payment channel is `simulated`, so it is
# not in TABLES, which every tenant gets.
BANK = TableSchema(
    logical_id="SimulatedBankTable", env_var="BANK_TABLE_NAME", partition_key="pk", sort_key="sk"
)
