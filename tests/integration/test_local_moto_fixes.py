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


def _count_comparisons(monkeypatch) -> list[int]:
    """How many times moto compares two DynamoDB values (its sorts' cost), from now on."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    counted = [0]
    original = DynamoType.__lt__

    def lt(self, other):
        counted[0] += 1
        return original(self, other)

    monkeypatch.setattr(DynamoType, "__lt__", lt)
    return counted


def test_an_index_query_sorts_what_it_found_not_the_whole_table(ddb, monkeypatch):
    """A long-lived local stack's table grows with every test: settlement's claims query an index page
    after page, and moto sorted every item of the table for each page, until the stack's API timed out."""
    index = MAIN.indexes[0]
    for n in range(1500):
        wanted = n % 300 == 0  # 5 of them
        ddb.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": f"IDX#{n:05d}"},
                "sk": {"S": "X"},
                index.partition_key: {"S": "WANTED" if wanted else f"OTHER#{n % 7}"},
                index.sort_key: {"S": f"{1500 - n:05d}"},
            },
        )
    counted = _count_comparisons(monkeypatch)
    pages, start = [], None
    while True:
        args = {"ExclusiveStartKey": start} if start else {}
        page = ddb.query(
            TableName=TABLE,
            IndexName=index.name,
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": index.partition_key},
            ExpressionAttributeValues={":p": {"S": "WANTED"}},
            Limit=2,
            **args,
        )
        pages.append([item["pk"]["S"] for item in page["Items"]])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    # In the index's order (its sort key), page by page, each item once.
    assert sum(pages, []) == [f"IDX#{n:05d}" for n in (1200, 900, 600, 300, 0)], pages
    assert counted[0] < 200, counted[0]  # moto sorted the table for each of the 3 pages: 5,100 here


def test_a_table_query_reads_its_partition_only(ddb, monkeypatch):
    for n in range(1500):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"PART#{n % 50:02d}"}, "sk": {"S": f"{n:05d}"}})
    counted = _count_comparisons(monkeypatch)
    page = ddb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "PART#07"}},
    )
    assert [item["sk"]["S"] for item in page["Items"]] == [f"{n:05d}" for n in range(7, 1500, 50)]
    assert counted[0] < 500, counted[0]
