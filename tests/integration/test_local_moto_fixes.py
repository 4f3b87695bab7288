"""The local stack's moto behaves as DynamoDB where our code relies on it (infra/local/moto_fixes.py)."""

from __future__ import annotations

import boto3
import pytest

from coupons.data.schema import MAIN
from tests.integration.local_moto import local_moto

REGION = "eu-west-1"
TABLE = "fixes-main"


@pytest.fixture(scope="module")
def ddb():
    with local_moto(REGION) as server:
        client = boto3.client("dynamodb", region_name=REGION, endpoint_url=server.endpoint)
        client.create_table(**MAIN.create_table_kwargs(TABLE))
        yield client


def _put_once(pk: str) -> list[dict]:
    return [
        {
            "Put": {
                "TableName": TABLE,
                "Item": {"pk": {"S": pk}, "sk": {"S": "X"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
    ]


def test_a_retried_transaction_with_its_token_succeeds_again_without_applying_twice(ddb):
    # As botocore retries after a read timeout: the same request, the same ClientRequestToken.
    ddb.transact_write_items(TransactItems=_put_once("a"), ClientRequestToken="token-a")

    ddb.transact_write_items(TransactItems=_put_once("a"), ClientRequestToken="token-a")

    assert ddb.get_item(TableName=TABLE, Key={"pk": {"S": "a"}, "sk": {"S": "X"}})["Item"]


def test_another_transaction_is_still_refused_by_its_condition(ddb):
    ddb.transact_write_items(TransactItems=_put_once("b"), ClientRequestToken="token-b")

    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=_put_once("b"), ClientRequestToken="token-b2")


def test_a_token_reused_with_other_items_is_refused(ddb):
    ddb.transact_write_items(TransactItems=_put_once("c"), ClientRequestToken="token-c")

    with pytest.raises(ddb.exceptions.ClientError):
        ddb.transact_write_items(TransactItems=_put_once("d"), ClientRequestToken="token-c")
