"""No item settlement writes grows with the number of postings: a party's lines are items of their own
(SETTLEMENT#{run}#LINES#{party} / {journal_id}), its record holds one outcome per currency, the run
holds its totals per currency, and the statement is an S3 object. DynamoDB refuses an item over 400 KB
(moto too); a party with many lines settles, and its record is as small as one with a few."""

from __future__ import annotations

import json

import pytest

from coupons.data.ledger import shard_of, unsettled_partition, unsettled_sort_key
from coupons.data.models.settlement import RUN_SK, party_pk, run_pk
from tests.dynamo_json import to_item
from tests.integration.test_settlement_steps import DAY, MAIN_TABLE, RUN, moto_world

# Enough to show the records do not grow with the lines (moto copies the table per transaction: kept small).
LINES = 60


@pytest.fixture
def world():
    with moto_world() as made:
        yield made


def put_postings(world, party: str, count: int, amount: int = 10) -> None:
    """`count` unsettled postings of `party` as clearing writes them (batched: the setup, not the test)."""
    items = []
    for n in range(count):
        journal_id = f"jnl_rdm_{party[-3:]}{n:06d}"
        shard = shard_of(journal_id)
        items.append(
            {
                "pk": f"ENTRIES#{party}#{shard}",
                "sk": f"{DAY}#{journal_id}",
                "account": party,
                "amount": amount,
                "currency": "CNY",
                "journal_id": journal_id,
                "source_id": journal_id.removeprefix("jnl_"),
                "source_kind": "REDEMPTION",
                "redemption_id": journal_id.removeprefix("jnl_"),
                "order_id": f"o-{n:06d}",
                "code": f"ZZ99{n:017d}X",
                "campaign_id": "cmp_01JDEMO0000000000000000000",
                "merchant_id": party.removeprefix("merchant:"),
                "store_id": "s-1",
                "business_date": DAY,
                "due_date": DAY,
                "settled": False,
                "gsi1pk": unsettled_partition(shard),
                "gsi1sk": unsettled_sort_key(DAY, party, journal_id),
            }
        )
    for i in range(0, len(items), 25):
        world.ddb.batch_write_item(
            RequestItems={MAIN_TABLE: [{"PutRequest": {"Item": to_item(i)}} for i in items[i : i + 25]]}
        )


def size(world, pk: str, sk: str) -> int:
    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    item = world.ddb.get_item(TableName=MAIN_TABLE, Key=key, ConsistentRead=True)["Item"]
    return len(json.dumps(item))  # the wire form: larger than DynamoDB's own count, never smaller


def test_a_party_with_many_lines_settles_and_no_item_grows_with_them(world):
    # Given one merchant with a few postings and one with LINES of them
    put_postings(world, "merchant:few", 3, amount=50)
    put_postings(world, "merchant:big", LINES)

    # When the day is settled (any item past 400 KB would be refused, failing a step)
    closed = world.settle()

    # Then both are paid their sums, and the party records and the run are small and alike in size
    assert world.paid() == {"merchant:few": 150, "merchant:big": 10 * LINES}
    assert closed["totals"][0]["lines"] == LINES + 3
    big = size(world, party_pk(RUN, "merchant:big"), "merchant:big")
    few = size(world, party_pk(RUN, "merchant:few"), "merchant:few")
    assert big < 2_000 and abs(big - few) < 50
    assert size(world, run_pk(RUN), RUN_SK) < 2_000
    assert len(world.store.lines(RUN, "merchant:big")) == LINES
    statement = json.loads(world.statement("merchant:big"))
    assert len(statement["lines"]) == LINES  # the statement is an S3 object, not an item
