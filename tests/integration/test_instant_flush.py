"""The instant threshold flush on moto in-process (docs/instant.md, "The threshold flush"): clearing
counts each merchant's redemption posting into its party's pending total of the window, in the
journal's own transaction; the total's crossing pays the party's window at once; the window's payout,
a redelivered crossing and a crash between claim and send pay nothing twice; a flush racing the
window's payout pays each posting once."""

from __future__ import annotations

import copy
import json
import threading

import pytest
from botocore.exceptions import ClientError

from coupons.data.ledger import AlreadyPosted
from coupons.data.models.instant import PENDING_TOTAL_SK
from coupons.domain import instant as rules
from coupons.domain.instant import InstantTerms, SettlementMode
from coupons.domain.ledger import Journal, Leg
from coupons.services.instant_pending import PendingCounter
from tests.dynamo_json import to_item
from tests.integration.moto_threads import OneRequestAtATime
from tests.integration.test_instant_payouts import AT, Instant, merchant_postings, paid_by_bank
from tests.integration.test_settlement_steps import DAY, moto_world

THRESHOLD = 100
TERMS = InstantTerms(default_mode=SettlementMode.INSTANT, thresholds={"CNY": THRESHOLD})
WINDOW = rules.window_start(AT, TERMS.window_seconds)
PARTY = "merchant:m1"


@pytest.fixture
def world():
    with moto_world() as made:
        yield made


def clear(world, instant, journal_id, amount, *, merchant=PARTY, currency="CNY", campaign=None, at=AT):
    """Posts a redemption's journal as clearing does on a tenant with a threshold: the counting's writes
    in the journal's transaction (coupons.services.clearing passes them the same way)."""
    journal = Journal(
        journal_id=journal_id, source_id=journal_id.removeprefix("jnl_"), kind="REDEMPTION",
        currency=currency, legs=(Leg("brand:b1", -amount), Leg(merchant, amount)), party_shares={},
    )  # fmt: skip
    extra = {
        "redemption_id": journal.source_id,
        "merchant_id": merchant.split(":")[1],
        "campaign_id": campaign,
    }
    extra = {k: v for k, v in extra.items() if v is not None}
    counter = PendingCounter(instant.pending, TERMS)
    world.ledger.post(
        journal, business_date=DAY, due_date=DAY, posted_at=f"{DAY}T12:00:00Z", extra=extra,
        also=counter.writes(journal, business_date=DAY, extra=extra, at=at),
    )  # fmt: skip


def crossing(instant, party=PARTY):
    total = instant.pending.total(party, "CNY", WINDOW)
    assert total is not None and total["remaining"] <= 0, total
    return total


def test_clearing_counts_a_merchants_redemption_postings_into_its_window_once(world):
    instant = Instant(world, terms=TERMS)
    clear(world, instant, "jnl_rdm_a", 30)
    clear(world, instant, "jnl_rdm_b", 40)
    # A redelivered record finds its journal posted: nothing of its counting is written again
    with pytest.raises(AlreadyPosted):
        clear(world, instant, "jnl_rdm_b", 40)
    total = instant.pending.total(PARTY, "CNY", WINDOW)
    assert (total["amount"], total["remaining"], total["party"]) == (70, 30, PARTY)
    assert total["expires_at"] > int(WINDOW.timestamp())
    assert len(instant.pending.marked(PARTY, "CNY", WINDOW)) == 2
    # The brand's leg is not counted (it owes), nor a currency without a threshold
    assert instant.pending.total("brand:b1", "CNY", WINDOW) is None
    clear(world, instant, "jnl_rdm_e", 500, currency="EUR")
    assert instant.pending.total(PARTY, "EUR", WINDOW) is None


def test_a_crossing_pays_the_partys_window_at_once_and_the_windows_payout_pays_nothing_twice(world):
    # Given three small orders whose sum (120) crosses the threshold (100)
    instant = Instant(world, terms=TERMS)
    for i, amount in enumerate((30, 40, 50)):
        clear(world, instant, f"jnl_rdm_{i}", amount)

    # When the crossing's record reaches the payout function
    outcome = instant.service.flush(crossing(instant))

    # Then the party is paid the window's 120 at once, as the flush's payout of party and window
    payout = rules.flush_payout_id(PARTY, "CNY", WINDOW)
    assert outcome.paid == [payout] and paid_by_bank(world) == [(PARTY, 120, payout)]
    assert all(p["run_id"] == payout and p["settled"] for p in merchant_postings(world))
    [line] = instant.store.statement(PARTY, "2026-03-10")
    assert (line["payout_id"], line["amount"]) == (payout, 120)
    # And when the window's batch arrives (the first mapping), nothing is paid twice
    assert instant.deliver(world.postings()).paid == []
    assert len(world.bank.accepted()) == 1


def test_a_redelivered_crossing_pays_nothing_twice_and_later_postings_wait_for_the_window(world):
    instant = Instant(world, terms=TERMS)
    for i in range(3):
        clear(world, instant, f"jnl_rdm_{i}", 40)
    first = instant.service.flush(crossing(instant))
    # A posting cleared after the flush claimed, in the same window
    clear(world, instant, "jnl_rdm_late", 25)
    # When the crossing is delivered again
    again = instant.service.flush(crossing(instant))
    # Then nothing more is paid by the flush: the late posting waits for the window's payout
    assert len(first.paid) == 1 and again.paid == [] and len(world.bank.accepted()) == 1
    window = instant.deliver(world.postings())
    assert [amount for _, amount, _ in paid_by_bank(world)] == sorted([120, 25])
    assert len(window.paid) == 1 and rules.payout_id(PARTY, WINDOW, 1) in window.paid


def test_a_crash_between_claim_and_send_is_finished_by_the_redelivered_crossing(world):
    instant = Instant(world, terms=TERMS)
    for i in range(3):
        clear(world, instant, f"jnl_rdm_{i}", 40)
    original = instant.service._steps.pay
    instant.service._steps.pay = lambda *a, **k: (_ for _ in ()).throw(SystemExit("Lambda timed out"))
    with pytest.raises(SystemExit):
        instant.service.flush(crossing(instant))
    payout = rules.flush_payout_id(PARTY, "CNY", WINDOW)
    assert all(p["run_id"] == payout for p in merchant_postings(world))  # claimed, not sent
    assert world.bank.accepted() == []
    instant.service._steps.pay = original
    # When the crossing comes again
    outcome = instant.service.flush(crossing(instant))
    # Then the same payout is finished: the three postings paid once
    assert outcome.paid == [payout] and paid_by_bank(world) == [(PARTY, 120, payout)]


def test_a_scheduled_merchants_crossing_pays_only_its_instant_campaigns_postings(world):
    instant = Instant(world, terms=InstantTerms(thresholds={"CNY": THRESHOLD}))  # default SCHEDULED
    instant.store.set_campaign_mode("c-fast", "INSTANT", at="2026-03-09T10:00:00Z", by="admin")
    clear(world, instant, "jnl_rdm_f", 30, campaign="c-fast")
    clear(world, instant, "jnl_rdm_s", 90, campaign="c-slow")
    outcome = instant.service.flush(crossing(instant))
    assert [amount for _, amount, _ in paid_by_bank(world)] == [30] and len(outcome.paid) == 1
    assert {p["campaign_id"]: p.get("run_id") is not None for p in merchant_postings(world)} == {
        "c-fast": True,
        "c-slow": False,
    }


def test_a_flush_and_the_windows_payout_racing_pay_each_posting_once(world):
    # Given 20 postings of 10 (the threshold crossed at the 10th)
    instant = Instant(world, terms=TERMS)
    for i in range(20):
        clear(world, instant, f"jnl_rdm_r{i:02d}", 10)
    total = crossing(instant)
    shared = OneRequestAtATime(world.ddb)
    racing = Instant(world, terms=TERMS, client=shared)
    barrier = threading.Barrier(2)
    errors = []

    def run(call):
        barrier.wait()
        try:
            call()
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    # When the crossing's flush and the window's batch run at once
    threads = [
        threading.Thread(target=run, args=(lambda: racing.service.flush(total),)),
        threading.Thread(target=run, args=(lambda: racing.deliver(world.postings()),)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # Then each posting belongs to one payout, and the bank moved exactly what cleared: 200, once
    owners = [p["run_id"] for p in merchant_postings(world)]
    assert len(owners) == 20 and all(rules.is_payout(o) for o in owners)
    assert all(p["settled"] for p in merchant_postings(world))
    assert sum(amount for _, amount, _ in paid_by_bank(world)) == 200
    # And a redelivery of either pays nothing more
    instant.service.flush(total)
    instant.deliver(world.postings())
    assert sum(amount for _, amount, _ in paid_by_bank(world)) == 200


def _record(event, old, new):
    keys = {"pk": new["pk"], "sk": new["sk"]}
    record = {
        "eventName": event,
        "dynamodb": {"Keys": to_item(keys), "NewImage": to_item(new), "SequenceNumber": "1"},
    }
    if old is not None:
        record["dynamodb"]["OldImage"] = to_item(old)
    return record


def test_only_the_crossing_record_is_a_flush_in_the_handler_and_in_the_mappings_filter(aws):
    # (imported here, under the aws fixture's environment: the wiring builds the metrics' namespace on import)
    from coupons.instant_wiring import crossing_of
    from infra.constructs.instant import crossing_filters
    from infra.local.streams import record_matches

    base = {"pk": f"IPENDING#{PARTY}#CNY#20260309100000", "sk": PENDING_TOTAL_SK, "party": PARTY,
            "currency": "CNY", "window": "2026-03-09T10:00:00Z"}  # fmt: skip
    below, at, past = ({**base, "remaining": r} for r in (30, 0, -20))
    cases = [
        (_record("INSERT", None, below), False),
        (_record("INSERT", None, past), True),  # one posting above the threshold alone
        (_record("MODIFY", below, at), True),
        (_record("MODIFY", below, past), True),
        (_record("MODIFY", at, past), False),  # past it already: the window's payout takes the rest
        (_record("MODIFY", below, {**below, "remaining": 10}), False),
        (_record("INSERT", None, {**past, "sk": "P#jnl_x"}), False),  # a mark, not the total
    ]
    patterns = [json.loads(f["pattern"]) for f in crossing_filters()]
    for record, expected in cases:
        assert (crossing_of(copy.deepcopy(record)) is not None) is expected, record
        assert any(record_matches(p, record) for p in patterns) is expected, record


def test_clearing_tries_a_transaction_another_one_conflicted_with_again(clearing, ledger, aws, monkeypatch):
    from tests.integration.test_clearing_handler import RDM, balances, store
    from tests.integration.test_clearing_redelivery import batch, redemption

    monkeypatch.setenv(
        "INSTANT_SETTLEMENT", json.dumps({"default_mode": "SCHEDULED", "flush_threshold": {"CNY": 1000}})
    )
    from coupons.data.clients import dynamodb

    client = dynamodb()  # the one the clearing function's stores use
    conflicts = []
    original = client._make_api_call

    def call(operation, kwargs):
        if operation == "TransactWriteItems" and not conflicts:
            conflicts.append(1)
            n = len(kwargs["TransactItems"])
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "None"}] * (n - 1) + [{"Code": "TransactionConflict"}],
                },
                operation,
            )
        return original(operation, kwargs)

    monkeypatch.setattr(client, "_make_api_call", call)
    # When a redemption is cleared and its first transaction is cancelled by another's
    assert clearing(store(aws, batch(redemption(RDM, 1001)))) == []
    # Then it was tried again and posted once, its merchant's posting counted toward the threshold once
    assert conflicts == [1] and balances(ledger)["merchant:m-001"] == 801
    from tests.integration.conftest import TABLE

    items = aws.scan(TableName=TABLE, FilterExpression="begins_with(pk, :p)",
                     ExpressionAttributeValues={":p": {"S": "IPENDING#merchant:m-001#CNY#"}})["Items"]  # fmt: skip
    totals = [i for i in items if i["sk"]["S"] == PENDING_TOTAL_SK]
    assert len(totals) == 1 and totals[0]["amount"]["N"] == "801" and totals[0]["remaining"]["N"] == "199"
    assert len(items) == 2  # the total and the posting's mark
