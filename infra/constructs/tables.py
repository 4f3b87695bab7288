"""The DynamoDB tables, built from coupons.data.schema (itself derived from the PynamoDB models in
coupons.data.models) so the code and the infrastructure cannot drift."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from coupons.data.schema import MAIN, TableSchema

_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER, "B": dynamodb.AttributeType.BINARY}
_PROJECTIONS = {"ALL": dynamodb.ProjectionType.ALL, "KEYS_ONLY": dynamodb.ProjectionType.KEYS_ONLY}


def _attribute(schema: TableSchema, name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=_TYPES[schema.attribute_type(name)])


def table_from_schema(scope: Construct, schema: TableSchema, key: kms.IKey) -> dynamodb.Table:
    # dynamodb.Table, not TableV2: TableV2 is an AWS::DynamoDB::GlobalTable, which the local
    # stack (moto's CloudFormation) cannot create.
    table = dynamodb.Table(
        scope,
        schema.logical_id,
        partition_key=_attribute(schema, schema.partition_key),
        sort_key=_attribute(schema, schema.sort_key),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        stream=dynamodb.StreamViewType(schema.stream) if schema.stream else None,
        time_to_live_attribute=schema.ttl_attribute,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=True,
        removal_policy=RemovalPolicy.RETAIN,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
    )
    for index in schema.indexes:
        table.add_global_secondary_index(
            index_name=index.name,
            partition_key=_attribute(schema, index.partition_key),
            sort_key=_attribute(schema, index.sort_key),
            projection_type=_PROJECTIONS[index.projection],
        )
    # The schema names the logical id: a stateful resource whose logical id moved (say, by nesting
    # it in another construct) would be replaced, and the local deployer finds the table by it.
    table.node.default_child.override_logical_id(schema.logical_id)
    return table


class Tables(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.main = table_from_schema(self, MAIN, key)
