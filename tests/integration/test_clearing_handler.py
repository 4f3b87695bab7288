"""The clearing function on sample stream batches: exactly once, poison records isolated, order; the
clearing-pending (gsi2) and unsettled-postings (gsi1) indexes settlement reads."""

import copy
import json
from datetime import date
from pathlib import Path

import pytest

from coupons.data.ledger import SHARDS, shard_of, unsettled_partition
from coupons.data.redemptions import PENDING_SHARDS, RedemptionStore, pending_index, pending_shard
from tests.dynamo_json import from_item, to_item
from tests.events import load
from tests.integration.conftest import ROOT, RULE, TABLE


@pytest.fixture
def redemptions(aws):
    return RedemptionStore(aws, TABLE)


def store(aws, batch):
    """Writes the batch's redemption / reversal items as the redemption code does (clearing-pending
    index keys included): a stream record is the image of an item that is in the table."""
    for record in batch["Records"]:
        image = record["dynamodb"].get("NewImage") or {}
        if record["eventName"] == "INSERT" and image.get("kind", {}).get("S") in ("REDEMPTION", "REVERSAL"):
            plain = from_item(image)
            source_id = plain.get("reversal_id") or plain["redemption_id"]
            aws.put_item(
                TableName=TABLE, Item=to_item({**plain, **pending_index(source_id, plain["business_date"])})
            )
    return batch


def item(aws, pk, sk):
    found = aws.get_item(TableName=TABLE, Key=to_item({"pk": pk, "sk": sk}), ConsistentRead=True).get("Item")
    return from_item(found) if found else None


def index(aws, name, partition):
    """Every item of one partition of a GSI (gsi1 / gsi2)."""
    page = aws.query(
        TableName=TABLE,
        IndexName=name,
        KeyConditionExpression=f"{name}pk = :pk",
        ExpressionAttributeValues={":pk": {"S": partition}},
    )
    return [from_item(i) for i in page["Items"]]


def table(aws):
    return sorted(
        (from_item(i) for i in aws.scan(TableName=TABLE)["Items"]), key=lambda i: (i["pk"], i["sk"])
    )


RDM = "rdm_01JDEMOREDEMPTION00000001"
RVS = "rvs_01JDEMOREVERSAL000000001"


def balances(ledger):
    return {a: ledger.balance(a).get("CNY", 0) for a in ("platform", "brand:brand-demo", "merchant:m-001")}


def test_a_batch_delivered_twice_posts_each_journal_once(clearing, ledger, aws):
    batch = store(aws, load("clearing/redemption_batch"))
    assert clearing(batch) == []
    assert clearing(batch) == []
    assert balances(ledger) == {"platform": -501, "brand:brand-demo": -300, "merchant:m-001": 801}
    journal = ledger.journal("jnl_rdm_01JDEMOREDEMPTION00000001")
    assert journal["rule"] == {"rule_id": "fr_DEMO", "version": 1, "source": "default"}
    assert (journal["business_date"], journal["due_date"]) == ("2026-11-24", "2026-11-25")


def test_a_poison_record_fails_alone_and_the_rest_is_posted(clearing, ledger, aws):
    batch = store(aws, load("clearing/batch_with_poison_record"))
    failures = clearing(batch)
    assert failures == [{"itemIdentifier": batch["Records"][0]["dynamodb"]["SequenceNumber"]}]
    assert ledger.journal("jnl_rdm_02") is None
    assert ledger.journal("jnl_rdm_03") is not None and ledger.journal("jnl_rdm_04") is not None
    # Lambda re-sends from the failed record on: the ones that succeeded run again and post nothing.
    assert clearing(batch) == failures
    assert balances(ledger)["merchant:m-001"] == 801 + 200


def test_a_reversal_before_its_redemption_fails_then_posts_on_retry(clearing, ledger, aws):
    # Both items are in the table; the redemption's record is just not cleared yet.
    redemption = store(aws, load("clearing/redemption_batch"))
    reversal = store(aws, load("clearing/reversal_batch"))
    assert len(clearing(reversal)) == 1
    assert ledger.journal("jnl_rvs_01JDEMOREVERSAL000000001") is None
    clearing(redemption)
    assert clearing(reversal) == []
    assert clearing(reversal) == []  # redelivered: posted once
    journal = ledger.journal("jnl_rvs_01JDEMOREVERSAL000000001")
    assert sum(leg["amount"] for leg in journal["legs"]) == 0
    assert sum(journal["party_shares"].values()) == 500
    redemption = ledger.journal("jnl_rdm_01JDEMOREDEMPTION00000001")
    assert redemption["reversed"] == journal["party_shares"] and redemption["reversal_count"] == 1
    assert sum(balances(ledger).values()) == 0
    assert balances(ledger)["merchant:m-001"] == 801 - (
        journal["party_shares"]["PLATFORM"] + journal["party_shares"]["BRAND"]
    )


def test_records_that_are_not_redemptions_or_reversals_are_skipped(clearing, ledger):
    batch = load("clearing/redemption_batch")
    batch["Records"] = batch["Records"][1:]  # only the coupon MODIFY
    assert clearing(batch) == []
    assert balances(ledger) == {"platform": 0, "brand:brand-demo": 0, "merchant:m-001": 0}


def captured_in_place(batch, *, old_kind="HOLD"):
    """The sample redemption's record as a redemption hold captured in place makes it (docs/redemption.md
    "Toward one request"): a MODIFY of the item, its OldImage the hold (kind HOLD)."""
    record = copy.deepcopy(batch["Records"][0])
    record["eventName"] = "MODIFY"
    record["dynamodb"]["OldImage"] = {**record["dynamodb"]["NewImage"], "kind": {"S": old_kind}}
    return {"Records": [record]}


def test_a_hold_captured_in_place_is_posted_once_and_other_changes_of_a_redemption_are_not(
    clearing, ledger, aws
):
    batch = store(aws, load("clearing/redemption_batch"))
    assert clearing(captured_in_place(batch, old_kind="REDEMPTION")) == []  # e.g. a refund's totals
    assert ledger.journal("jnl_rdm_01JDEMOREDEMPTION00000001") is None
    captured = captured_in_place(batch)
    assert clearing(captured) == [] and clearing(captured) == []  # a redelivery posts nothing more
    assert balances(ledger) == {"platform": -501, "brand:brand-demo": -300, "merchant:m-001": 801}


def test_the_sample_events_are_what_the_redemption_code_writes(api, keys):
    """The sample stream images carry the same attributes the real redemption and reversal records do."""
    from tests.integration.test_redemption_api import coupon, redeem

    rule = api.call(
        "POST",
        "/v1/funding-rules",
        api_key=keys["admin"],
        body={"name": "r", "shares": RULE, "brand_ids": ["brand-demo"]},
    ).json
    code, _ = coupon(api, keys, funding_rule_id=rule["rule_id"])
    rid = redeem(api, keys["merchant:m-001"], code).json["redemption_id"]
    api.call("POST", f"/v1/redemptions/{rid}/reversals", api_key=keys["merchant:m-001"], body={"amount": 100})
    stored = {i["sk"]["S"].split("#")[0]: set(i) for i in api.items() if i["pk"]["S"] == f"REDEMPTION#{rid}"}
    sample = json.loads(Path(ROOT / "events" / "clearing" / "redemption_batch.json").read_text())
    # The items also carry the clearing-pending index keys (gsi2), which clearing does not read.
    index_keys = {"gsi2pk", "gsi2sk"}
    assert index_keys <= stored["REDEMPTION"] and index_keys <= stored["REVERSAL"]
    assert set(sample["Records"][0]["dynamodb"]["NewImage"]) - index_keys == stored["REDEMPTION"] - index_keys
    reversal = json.loads(Path(ROOT / "events" / "clearing" / "reversal_batch.json").read_text())
    assert set(reversal["Records"][0]["dynamodb"]["NewImage"]) - index_keys == stored["REVERSAL"] - index_keys


# -- the indexes settlement reads ------------------------------------------------------------------


def test_a_journals_postings_are_unsettled_in_gsi1_on_their_entries_shard(clearing, ledger, aws):
    assert clearing(store(aws, load("clearing/redemption_batch"))) == []
    journal_id = f"jnl_{RDM}"
    shard = shard_of(journal_id)
    accounts = ("platform", "brand:brand-demo", "merchant:m-001")
    unsettled = index(aws, "gsi1", unsettled_partition(shard))
    # Sorted by due date (T+1 after 2026-11-24), then account, then journal.
    assert [p["gsi1sk"] for p in unsettled] == sorted(f"2026-11-25#{a}#{journal_id}" for a in accounts)
    assert unsettled_partition(shard) == f"UNSETTLED#{shard}"
    for posting in unsettled:
        assert (posting["pk"], posting["sk"]) == (
            f"ENTRIES#{posting['account']}#{shard}",
            f"2026-11-24#{journal_id}",
        )
        assert posting["due_date"] == "2026-11-25" and posting["settled"] is False
        # What statements need, on the posting itself.
        assert (posting["rule_id"], posting["rule_version"]) == ("fr_DEMO", 1)
        assert (posting["merchant_id"], posting["store_id"], posting["brand_id"]) == (
            "m-001",
            "s-1",
            "brand-demo",
        )
        assert (posting["redemption_id"], posting["order_id"]) == (RDM, "o-1001")
        assert "reversal_id" not in posting
    assert {p["account"]: p["amount"] for p in unsettled} == {
        "platform": -501,
        "brand:brand-demo": -300,
        "merchant:m-001": 801,
    }
    assert all(index(aws, "gsi1", unsettled_partition(s)) == [] for s in range(SHARDS) if s != shard)
    # The entries read (what GET /v1/accounts/{account}/entries answers) carries no keys of any index.
    entries, _ = ledger.entries(
        "platform", from_date="2026-11-24", to_date="2026-11-24", start=(0, None), limit=10
    )
    assert len(entries) == 1 and not {"pk", "sk", "gsi1pk", "gsi1sk"} & set(entries[0])
    assert entries[0]["rule_id"] == "fr_DEMO"


def test_a_reversals_postings_carry_its_id_and_the_redemptions_rule(clearing, ledger, aws):
    assert clearing(store(aws, load("clearing/redemption_batch"))) == []
    assert clearing(store(aws, load("clearing/reversal_batch"))) == []
    journal_id = f"jnl_{RVS}"
    unsettled = [
        p
        for p in index(aws, "gsi1", unsettled_partition(shard_of(journal_id)))
        if p["journal_id"] == journal_id
    ]
    assert len(unsettled) == 3 and sum(p["amount"] for p in unsettled) == 0
    for posting in unsettled:
        assert posting["gsi1sk"] == f"2026-11-25#{posting['account']}#{journal_id}"
        assert (posting["reversal_id"], posting["redemption_id"]) == (RVS, RDM)
        assert (posting["rule_id"], posting["rule_version"], posting["source_kind"]) == (
            "fr_DEMO",
            1,
            "REVERSAL",
        )


def test_postings_of_a_journal_without_a_rule_carry_no_rule(clearing, ledger, aws):
    batch = load("clearing/redemption_batch")
    del batch["Records"][0]["dynamodb"]["NewImage"]["funding_rule_id"]  # the brand funds it all
    assert clearing(store(aws, batch)) == []
    journal_id = f"jnl_{RDM}"
    unsettled = index(aws, "gsi1", unsettled_partition(shard_of(journal_id)))
    assert {p["account"]: p["amount"] for p in unsettled} == {
        "brand:brand-demo": -1001,
        "merchant:m-001": 1001,
    }
    assert all("rule_id" not in p and "rule_version" not in p for p in unsettled)


def test_a_redemption_and_a_reversal_are_pending_clearing_until_their_journals_are_posted(
    clearing, ledger, redemptions, aws
):
    redemption = store(aws, load("clearing/redemption_batch"))
    partition = f"CLEARING_PENDING#{pending_shard(RDM)}"
    assert [(i["pk"], i["sk"], i["gsi2sk"]) for i in index(aws, "gsi2", partition)] == [
        (f"REDEMPTION#{RDM}", "REDEMPTION", f"2026-11-24#{RDM}")
    ]
    pending = {"kind": "REDEMPTION", "redemption_id": RDM, "business_date": "2026-11-24"}
    assert redemptions.pending_clearing("2026-11-24") == [pending]
    assert redemptions.pending_clearing("2026-12-31") == [pending]
    assert redemptions.pending_clearing("2026-11-23") == []  # a later business date is not asked about
    # The API's read of the redemption shows no index keys.
    found, _, _ = redemptions.get(RDM, limit=20)
    assert not {"gsi2pk", "gsi2sk"} & set(found)

    assert clearing(redemption) == []
    assert index(aws, "gsi2", partition) == []
    assert redemptions.pending_clearing("2026-12-31") == []
    cleared = item(aws, f"REDEMPTION#{RDM}", "REDEMPTION")
    assert "gsi2pk" not in cleared and "gsi2sk" not in cleared
    assert (cleared["discount"], cleared["merchant_id"]) == (1001, "m-001")  # the rest untouched

    reversal = store(aws, load("clearing/reversal_batch"))
    assert redemptions.pending_clearing("2026-11-24") == [
        {"kind": "REVERSAL", "redemption_id": RDM, "reversal_id": RVS, "business_date": "2026-11-24"}
    ]
    assert clearing(reversal) == []
    assert redemptions.pending_clearing("2026-11-24") == []
    assert "gsi2pk" not in item(aws, f"REDEMPTION#{RDM}", f"REVERSAL#2026-11-24T05:00:00Z#{RVS}")


def test_pending_clearing_reads_every_shard_and_stops_at_its_limit(redemptions, aws):
    ids = [f"rdm_PENDING{n:04d}" for n in range(40)]
    for n, rid in enumerate(ids):
        date = "2026-11-24" if n < 30 else "2026-11-25"
        plain = {"pk": f"REDEMPTION#{rid}", "sk": "REDEMPTION", "kind": "REDEMPTION", "redemption_id": rid}
        aws.put_item(
            TableName=TABLE, Item=to_item({**plain, "business_date": date, **pending_index(rid, date)})
        )
    assert len({pending_shard(rid) for rid in ids[:30]}) > 8  # spread over the shards
    assert all(0 <= pending_shard(rid) < PENDING_SHARDS for rid in ids)
    up_to_24 = redemptions.pending_clearing("2026-11-24", limit=100)
    assert sorted(p["redemption_id"] for p in up_to_24) == ids[:30]
    assert len(redemptions.pending_clearing("2026-11-25", limit=100)) == 40
    assert len(redemptions.pending_clearing("2026-11-24", limit=7)) == 7
    assert len(redemptions.pending_clearing("2026-11-24")) == 10


def test_a_redelivered_record_writes_nothing(clearing, ledger, aws):
    from coupons.data.clients import dynamodb
    from coupons.services.clearing import Clearer

    batch = store(aws, load("clearing/redemption_batch"))
    assert clearing(batch) == []
    before = table(aws)
    calls = []
    dynamodb().meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    assert clearing(batch) == []
    assert table(aws) == before
    # The journal's read, first: posted, so a duplicate; nothing it holds is read, nothing is written.
    assert calls == ["GetItem"]
    source = from_item(batch["Records"][0]["dynamodb"]["NewImage"])
    assert Clearer(ledger).clear(source) == "duplicate"
    assert table(aws) == before


def test_a_record_whose_item_is_not_in_the_table_fails_alone_and_creates_nothing(clearing, ledger, aws):
    from coupons.data.ledger import SourceMissing
    from coupons.services.clearing import Clearer

    batch = store(aws, load("clearing/batch_with_poison_record"))
    aws.delete_item(TableName=TABLE, Key=to_item({"pk": "REDEMPTION#rdm_04", "sk": "REDEMPTION"}))
    failures = clearing(batch)
    # rdm_02 names an unknown rule; rdm_04's item is missing; rdm_03 is posted.
    sequence = [r["dynamodb"]["SequenceNumber"] for r in batch["Records"]]
    assert failures == [{"itemIdentifier": sequence[0]}, {"itemIdentifier": sequence[2]}]
    assert ledger.journal("jnl_rdm_03") is not None and ledger.journal("jnl_rdm_04") is None
    assert item(aws, "REDEMPTION#rdm_04", "REDEMPTION") is None  # no stub item
    assert not [i for i in table(aws) if i.get("journal_id") == "jnl_rdm_04"]
    with pytest.raises(SourceMissing):
        Clearer(ledger).clear(from_item(batch["Records"][2]["dynamodb"]["NewImage"]))


def test_a_redemption_made_over_the_api_is_pending_then_cleared_and_its_entries_show_no_index_keys(
    api, keys, clearing, ledger, redemptions
):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tests.integration.test_redemption_api import coupon, redeem

    code, _ = coupon(api, keys, funding_rule_id="fr_DEMO")
    rid = redeem(api, keys["merchant:m-001"], code).json["redemption_id"]
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert [p["redemption_id"] for p in redemptions.pending_clearing(today)] == [rid]
    read = api.call("GET", f"/v1/redemptions/{rid}", api_key=keys["admin"]).json
    assert not {"gsi2pk", "gsi2sk"} & set(read)
    # The stream's record of the redemption: the item as written.
    stored = next(i for i in api.items() if i["pk"]["S"] == f"REDEMPTION#{rid}")
    event = load("clearing/redemption_batch")
    record = event["Records"][0]
    record["dynamodb"].update(Keys={"pk": stored["pk"], "sk": stored["sk"]}, NewImage=stored)
    event["Records"] = [record]
    assert clearing(event) == []
    assert redemptions.pending_clearing(today) == []
    answer = api.call("GET", "/v1/accounts/merchant:m-001/entries", api_key=keys["merchant:m-001"])
    assert answer.status == 200, answer.raw
    (entry,) = answer.json["items"]
    assert not {"pk", "sk", "gsi1pk", "gsi1sk"} & set(entry)
    assert (entry["amount"], entry["rule_id"], entry["rule_version"], entry["store_id"]) == (
        800,
        "fr_DEMO",
        1,
        "s-1",
    )


def test_with_a_holiday_calendar_a_t1_due_date_on_a_holiday_rolls_to_the_next_business_day(
    clearing, ledger, aws, monkeypatch
):
    import coupons.config
    from coupons.domain.calendars import BusinessCalendar, to_environment

    # Given a tenant whose calendar makes Wednesday 2026-11-25 a holiday (the function's environment)
    holiday = BusinessCalendar("test", through=date(2026, 12, 31), holidays=frozenset({date(2026, 11, 25)}))
    monkeypatch.setenv("TENANT_HOLIDAY_CALENDAR", to_environment(holiday))
    coupons.config.settings.cache_clear()
    # When Tuesday's T+1 redemption is cleared
    assert clearing(store(aws, load("clearing/redemption_batch"))) == []
    # Then it is due the next business day, Thursday, on the journal and on its postings
    journal = ledger.journal("jnl_rdm_01JDEMOREDEMPTION00000001")
    assert (journal["business_date"], journal["due_date"]) == ("2026-11-24", "2026-11-26")
    postings = [i for i in table(aws) if i["pk"].startswith("ENTRIES#")]
    assert postings and {p["due_date"] for p in postings} == {"2026-11-26"}
