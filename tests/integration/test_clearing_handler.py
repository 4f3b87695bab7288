"""The clearing function on sample stream batches: exactly once, poison records isolated, order."""

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from coupons.data.ledger import LedgerStore
from tests.events import load
from tests.integration.conftest import ROOT, TABLE, FakeContext

RULE = {"PLATFORM": 5000, "BRAND": 3000, "MERCHANT": 2000}


def load_clearing_handler():
    """functions/clearing/handler.py under its own module name (the API's is also `handler`)."""
    spec = importlib.util.spec_from_file_location(
        "clearing_handler", ROOT / "functions" / "clearing" / "handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ledger(aws):
    import coupons.config
    import coupons.data.clients

    coupons.config.settings.cache_clear()
    coupons.data.clients._dynamodb.cache_clear()
    store = LedgerStore(aws, TABLE)
    store.put_rule(
        {"rule_id": "fr_DEMO", "name": "demo 50/30/20"},
        {"version": 1, "shares": RULE, "effective_from": "2026-01-01T00:00:00Z"},
    )
    return store


@pytest.fixture
def clearing(ledger):
    module = load_clearing_handler()

    def deliver(event):
        return module.lambda_handler(copy.deepcopy(event), FakeContext())["batchItemFailures"]

    return deliver


def balances(ledger):
    return {a: ledger.balance(a).get("CNY", 0) for a in ("platform", "brand:brand-demo", "merchant:m-001")}


def test_a_batch_delivered_twice_posts_each_journal_once(clearing, ledger):
    batch = load("clearing/redemption_batch")
    assert clearing(batch) == []
    assert clearing(batch) == []
    assert balances(ledger) == {"platform": -501, "brand:brand-demo": -300, "merchant:m-001": 801}
    journal = ledger.journal("jnl_rdm_01JDEMOREDEMPTION00000001")
    assert journal["rule"] == {"rule_id": "fr_DEMO", "version": 1, "source": "default"}
    assert (journal["business_date"], journal["due_date"]) == ("2026-11-24", "2026-11-25")


def test_a_poison_record_fails_alone_and_the_rest_is_posted(clearing, ledger):
    batch = load("clearing/batch_with_poison_record")
    failures = clearing(batch)
    assert failures == [{"itemIdentifier": batch["Records"][0]["dynamodb"]["SequenceNumber"]}]
    assert ledger.journal("jnl_rdm_02") is None
    assert ledger.journal("jnl_rdm_03") is not None and ledger.journal("jnl_rdm_04") is not None
    # Lambda re-sends from the failed record on: the ones that succeeded run again and post nothing.
    assert clearing(batch) == failures
    assert balances(ledger)["merchant:m-001"] == 801 + 200


def test_a_reversal_before_its_redemption_fails_then_posts_on_retry(clearing, ledger):
    reversal = load("clearing/reversal_batch")
    assert len(clearing(reversal)) == 1
    assert ledger.journal("jnl_rvs_01JDEMOREVERSAL000000001") is None
    clearing(load("clearing/redemption_batch"))
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


def test_the_sample_events_are_what_the_redemption_code_writes(api, keys):
    """The sample stream images carry the same attributes the real redemption and reversal records do."""
    from tests.integration.test_redemption_api import coupon, redeem

    rule = api.call(
        "POST", "/v1/funding-rules", api_key=keys["admin"], body={"name": "r", "shares": RULE}
    ).json
    code, _ = coupon(api, keys, funding_rule_id=rule["rule_id"])
    rid = redeem(api, keys["merchant:m-001"], code).json["redemption_id"]
    api.call("POST", f"/v1/redemptions/{rid}/reversals", api_key=keys["merchant:m-001"], body={"amount": 100})
    stored = {i["sk"]["S"].split("#")[0]: set(i) for i in api.items() if i["pk"]["S"] == f"REDEMPTION#{rid}"}
    sample = json.loads(Path(ROOT / "events" / "clearing" / "redemption_batch.json").read_text())
    assert set(sample["Records"][0]["dynamodb"]["NewImage"]) == stored["REDEMPTION"]
    reversal = json.loads(Path(ROOT / "events" / "clearing" / "reversal_batch.json").read_text())
    assert set(reversal["Records"][0]["dynamodb"]["NewImage"]) == stored["REVERSAL"]
