"""Clearing under the real stream's delivery: every record at least once, a failed batch retried from its
lowest failed record (so records that succeeded run again), a dead-letter range replayed. A record whose
journal is posted is a duplicate whatever it holds; only poison records ever fail."""

from __future__ import annotations

import copy
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupons.data.schema import MAIN
from coupons.domain import funding
from coupons.domain import ledger as journals
from tests.dynamo_json import from_item, to_item
from tests.events import load
from tests.integration.conftest import RULE, TABLE
from tests.integration.test_clearing_handler import RDM, balances, store

SHARES = funding.Shares(**RULE)
RULE_APPLIED = {"rule_id": "fr_DEMO", "version": 1, "source": "default"}
SEQUENCE = itertools.count(1000)


def _record(template: str, **fields) -> dict:
    """One stream record of the sample batch `template`, with its image's fields replaced (and a fresh
    sequence number): the image of a redemption or reversal item as the redemption code writes it."""
    record = copy.deepcopy(load(template)["Records"][0])
    image = from_item(record["dynamodb"]["NewImage"])
    image.update(fields)
    record["dynamodb"]["NewImage"] = to_item(image)
    record["dynamodb"]["Keys"] = to_item({"pk": image["pk"], "sk": image["sk"]})
    record["dynamodb"]["SequenceNumber"] = f"{next(SEQUENCE):021d}"
    return record


def redemption(redemption_id: str, discount: int, *, brand="brand-demo", merchant="m-001", rule="fr_DEMO"):
    return _record(
        "clearing/redemption_batch",
        pk=f"REDEMPTION#{redemption_id}",
        redemption_id=redemption_id,
        discount=discount,
        order_amount=discount * 10,
        brand_id=brand,
        merchant_id=merchant,
        funding_rule_id=rule,
    )


def reversal(
    redemption_id: str, reversal_id: str, discount_reversed: int, *, brand="brand-demo", merchant="m-001"
):
    return _record(
        "clearing/reversal_batch",
        pk=f"REDEMPTION#{redemption_id}",
        sk=f"REVERSAL#2026-11-24T05:00:00Z#{reversal_id}",
        redemption_id=redemption_id,
        reversal_id=reversal_id,
        discount_reversed=discount_reversed,
        refund_amount=discount_reversed * 10,
        brand_id=brand,
        merchant_id=merchant,
    )


def batch(*records) -> dict:
    return {"Records": list(records)}


def sequence_numbers(failures) -> list[str]:
    return [f["itemIdentifier"] for f in failures]


# -- examples ----------------------------------------------------------------------------------------


def test_a_full_refund_delivered_twice_is_posted_once_and_its_second_delivery_is_a_duplicate(
    clearing, ledger, aws
):
    # Given the redemption of 1,001 cleared, and a refund of the whole order
    assert clearing(store(aws, batch(redemption(RDM, 1001)))) == []
    full = store(aws, batch(reversal(RDM, "rvs_FULL", 1001)))

    # When the refund's record is delivered twice
    assert clearing(full) == []
    assert clearing(full) == []

    # Then it was posted once: every party is back to 0, and the redemption counts one reversal
    assert balances(ledger) == {"platform": 0, "brand:brand-demo": 0, "merchant:m-001": 0}
    cleared = ledger.journal(f"jnl_{RDM}")
    assert cleared["reversed"] == cleared["party_shares"] and cleared["reversal_count"] == 1


def test_a_refund_of_70_percent_of_the_discount_delivered_twice_is_posted_once(clearing, ledger, aws):
    assert clearing(store(aws, batch(redemption(RDM, 1001)))) == []
    most = store(aws, batch(reversal(RDM, "rvs_MOST", 700)))

    assert clearing(most) == []
    assert clearing(most) == []

    posted = ledger.journal("jnl_rvs_MOST")
    assert sum(posted["party_shares"].values()) == 700
    assert ledger.journal(f"jnl_{RDM}")["reversal_count"] == 1
    assert balances(ledger)["merchant:m-001"] == 801 - (
        posted["party_shares"]["PLATFORM"] + posted["party_shares"]["BRAND"]
    )
    assert sum(balances(ledger).values()) == 0


def test_a_retried_batch_of_a_poison_record_a_redemption_and_its_full_refund_fails_only_the_poison_record(
    clearing, ledger, aws
):
    # Given a batch: a redemption naming an unknown rule (poison), a redemption, its full refund
    poison = redemption("rdm_POISON", 1001, rule="fr_DOES_NOT_EXIST")
    event = store(aws, batch(poison, redemption(RDM, 1001), reversal(RDM, "rvs_FULL", 1001)))
    expected = [poison["dynamodb"]["SequenceNumber"]]

    # When it is delivered, then retried from its lowest failed record (the whole batch again), then
    # its dead-letter range replayed
    for _ in range(3):
        assert sequence_numbers(clearing(event)) == expected

    # Then the redemption and its refund were posted once each
    assert balances(ledger) == {"platform": 0, "brand:brand-demo": 0, "merchant:m-001": 0}
    assert ledger.journal(f"jnl_{RDM}")["reversal_count"] == 1
    assert ledger.journal("jnl_rdm_POISON") is None


def test_a_posted_records_redelivery_is_a_duplicate_even_if_its_rule_is_gone(clearing, ledger, aws):
    """Whatever a posted record holds, its redelivery is acknowledged: nothing it carries is read again."""
    from coupons.services.clearing import Clearer

    event = store(aws, batch(redemption(RDM, 1001)))
    assert clearing(event) == []
    aws.delete_item(TableName=TABLE, Key=to_item({"pk": "FUNDINGRULE#fr_DEMO", "sk": "RULE"}))

    assert clearing(event) == []
    assert Clearer(ledger).clear(from_item(event["Records"][0]["dynamodb"]["NewImage"])) == "duplicate"


# -- the property --------------------------------------------------------------------------------------

EXAMPLES = itertools.count()


@st.composite
def streams(draw):
    """(records in stream order, the sequence numbers of the poison records, the records' journals as
    one delivery would post them). Each redemption is followed, in its item's order, by 0-3 reversals
    that together give back at most its discount; poison records (an unknown rule, an item missing
    from the table) are spread among them."""
    n = next(EXAMPLES)
    items: list[list[tuple[dict, bool]]] = []
    expected: list[journals.Journal] = []
    for i in range(draw(st.integers(1, 3))):
        rid, brand, merchant = f"rdm_P{n}_{i}", f"b{n}", f"m{n}_{i % 2}"
        discount = draw(st.integers(1, 3000))
        redeemed = redemption(rid, discount, brand=brand, merchant=merchant)
        journal = journals.redemption_journal(
            from_item(redeemed["dynamodb"]["NewImage"]), SHARES, RULE_APPLIED
        )
        expected.append(journal)
        sequence = [(redeemed, True)]
        cuts = sorted(draw(st.lists(st.integers(0, discount), max_size=3)))
        if cuts and draw(st.booleans()):
            cuts[-1] = discount  # a full refund last
        given_back = dict.fromkeys(journal.party_shares, 0)
        previous = 0
        for j, cut in enumerate(cuts):
            reversed_ = reversal(rid, f"rvs_P{n}_{i}_{j}", cut - previous, brand=brand, merchant=merchant)
            previous = cut
            mirror = journals.reversal_journal(
                from_item(reversed_["dynamodb"]["NewImage"]), journal.party_shares, given_back, RULE_APPLIED
            )
            given_back = {p: given_back[p] + mirror.party_shares[p] for p in given_back}
            expected.append(mirror)
            sequence.append((reversed_, True))
        items.append(sequence)
    poison = []
    for k in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            record = redemption(f"rdm_X{n}_{k}", 100, brand=f"b{n}", merchant=f"m{n}_0", rule="fr_NONE")
            items.append([(record, True)])
        else:  # its item is not in the table
            items.append([(redemption(f"rdm_Y{n}_{k}", 100, brand=f"b{n}", merchant=f"m{n}_0"), False)])
        poison.append(items[-1][0][0]["dynamodb"]["SequenceNumber"])
    # Interleave the items, each keeping its own order (records of one partition key stay in order).
    order = draw(st.permutations([i for i, sequence in enumerate(items) for _ in sequence]))
    cursors = [0] * len(items)
    stream = []
    for i in order:
        stream.append(items[i][cursors[i]])
        cursors[i] += 1
    return stream, set(poison), expected


def fresh_table(aws, ledger):
    """An empty table (with the demo rule) per example: moto copies the whole table for every
    transaction, so examples piling up in one table would slow each other down."""
    aws.delete_table(TableName=TABLE)
    aws.create_table(**MAIN.create_table_kwargs(TABLE))
    ledger.put_rule(
        {"rule_id": "fr_DEMO", "name": "demo 50/30/20", "brand_ids": ["brand-demo"]},
        {"version": 1, "shares": RULE, "effective_from": "2026-01-01T00:00:00Z", "status": "APPROVED"},
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(streams(), st.data())
def test_any_redelivery_of_redemptions_and_reversals_fails_only_poison_records_and_posts_each_once(
    clearing, ledger, aws, generated, data
):
    stream, poison, expected = generated
    fresh_table(aws, ledger)
    for record, in_table in stream:
        if in_table:
            store(aws, batch(record))
    records = [record for record, _ in stream]
    platform_before = ledger.balance("platform").get("CNY", 0)

    # When the stream is delivered as Lambda does: batches of 1-5; a batch with failures retried from its
    # lowest failed record; a record failing 1-3 times given up (bisection leaves it alone in the DLQ);
    # a batch that succeeded sometimes delivered again (a replay). Every record 1-3 times or so.
    delivered = [0] * len(records)
    position = 0
    while position < len(records):
        size = data.draw(st.integers(1, 5), label="batch size")
        window = range(position, min(position + size, len(records)))
        failed = set(sequence_numbers(clearing(batch(*(records[i] for i in window)))))
        for i in window:
            delivered[i] += 1
        assert failed <= poison, "a record that is not poison failed"
        if failed:
            lowest = next(i for i in window if records[i]["dynamodb"]["SequenceNumber"] in failed)
            gives_up = delivered[lowest] >= data.draw(st.integers(1, 3), label="tries before the DLQ")
            position = lowest + 1 if gives_up else lowest
        elif data.draw(st.booleans(), label="delivered again"):
            position = window.start  # a replay of the same range
            if any(delivered[i] >= 3 for i in window):
                position = window.stop
        else:
            position = window.stop

    # Then each journal is posted once, with the amounts a single delivery posts
    owed: dict[str, int] = {}
    for journal in expected:
        assert ledger.journal(journal.journal_id)["party_shares"] == journal.party_shares
        for leg in journal.legs:
            owed[leg.account] = owed.get(leg.account, 0) + leg.amount
    platform = owed.pop("platform", 0)
    assert {account: ledger.balance(account).get("CNY", 0) for account in owed} == owed
    assert ledger.balance("platform").get("CNY", 0) - platform_before == platform
    for record in records:
        if record["dynamodb"]["SequenceNumber"] in poison:
            image = from_item(record["dynamodb"]["NewImage"])
            assert ledger.journal(journals.journal_id(image["redemption_id"])) is None
