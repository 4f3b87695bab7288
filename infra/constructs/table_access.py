"""A function's statements on the main table, from coupons.data.access: its reads, and its writes only on
the items of its partitions.

How DynamoDB evaluates `dynamodb:LeadingKeys` (the partition key values a request touches):
- PutItem / UpdateItem / DeleteItem / ConditionCheckItem name one key: the item's partition key.
- TransactWriteItems needs no action of its own: each contained Put / Update / Delete / ConditionCheck
  is authorised on its own as PutItem / UpdateItem / DeleteItem / ConditionCheckItem with that action's
  key, so one action outside the writer's partitions refuses the whole transaction.
- A Query on a global secondary index matches the index's partition key value (gsi1pk, gsi2pk), not the
  table's: that is why the reads stay table-wide here; narrowing them would list the index partitions
  (UNSETTLED#, CLEARING_PENDING#, USER#…) as well.
- `ForAllValues` is true when the request carries no partition key at all (Scan, for one, is not granted
  to any function): the `Null` condition says a write must name one.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam

from coupons.data import access
from coupons.data.schema import MAIN


def leading_keys_condition(writer: str) -> dict:
    return {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": access.patterns(writer)},
        "Null": {"dynamodb:LeadingKeys": "false"},
    }


def table_statements(table: dynamodb.ITable, writer: str) -> list[iam.PolicyStatement]:
    granted = access.WRITERS[writer]
    statements = []
    if granted.reads:
        # Indexes by name, from the schema: a wildcard (index/*) would also open indexes added later.
        indexes = (
            [f"{table.table_arn}/index/{index.name}" for index in MAIN.indexes] if granted.indexes else []
        )
        statements.append(
            iam.PolicyStatement(actions=list(granted.reads), resources=[table.table_arn, *indexes])
        )
    if granted.writes:
        statements.append(
            iam.PolicyStatement(
                actions=list(granted.writes),
                resources=[table.table_arn],
                conditions=leading_keys_condition(writer),
            )
        )
    return statements
