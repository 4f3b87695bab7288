"""Instant payouts on moto in-process: the batch of one window paid per party, a redelivered batch,
a scheduled run racing an instant payout for the same postings, a channel failing until the payout's
postings are given back to the next scheduled run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from coupons.data.instant import InstantStore
from coupons.data.instant_pending import InstantPending
from coupons.data.ledger import SHARDS
from coupons.data.settlement import SettlementStore
from coupons.domain import settlement as rules
from coupons.domain.instant import InstantTerms, SettlementMode, is_payout
from coupons.domain.ledger import Journal, Leg
from coupons.domain.payments import ChannelUnavailable
from coupons.domain.times import iso
from coupons.services.instant import LEFT_TO_RUN, SEND_LEASE_S, InstantPayouts
from coupons.services.settlement import SettlementSteps
from tests.integration.moto_threads import OneRequestAtATime
from tests.integration.test_settlement_steps import DAY, MAIN_TABLE, moto_world

AT = datetime(2026, 3, 9, 10, 0, 30, tzinfo=UTC)


class Instant:
    """The instant payout service over a settlement world, with its events kept."""

    def __init__(self, world, *, terms=None, client=None):
        self.world = world
        self.pending = InstantPending(client or world.ddb, MAIN_TABLE)
        self.events = []
        self.store = InstantStore(client or world.ddb, MAIN_TABLE)
        settlement = SettlementStore(client, MAIN_TABLE) if client else world.store
        steps = SettlementSteps(
            settlement, world.redemptions, world.statements, lambda: world.bank,
            time_zone="Asia/Shanghai", minimums={}, clock=world.clock, send_lease_s=SEND_LEASE_S,
        )  # fmt: skip
        self.service = InstantPayouts(
            self.store, settlement, steps, lambda: world.bank,
            terms or InstantTerms(default_mode=SettlementMode.INSTANT),
            time_zone="Asia/Shanghai", clock=world.clock,
            emit=lambda kind, detail: self.events.append((kind, detail)), pending=self.pending,
        )  # fmt: skip

    def deliver(self, postings, at=AT):
        return self.service.process(postings, delivered_at=at)


def merchant_postings(world, merchant="merchant:m1"):
    return [p for p in world.postings() if p["account"] == merchant]


def post_orders(world, n=5, *, merchant="merchant:m1", amount=30, prefix="jnl_rdm_i"):
    for i in range(n):
        world.post(f"{prefix}{i}", {"brand:b1": -amount, merchant: amount})


@pytest.fixture
def world():
    with moto_world() as made:
        yield made


def paid_by_bank(world):
    return sorted((r["party"], r["amount"], r["run_id"]) for r in world.bank.records())


def test_one_window_of_an_instant_merchant_is_one_payout_of_its_postings_with_a_balanced_journal(world):
    # Given five small orders at an INSTANT merchant (and the brand that funds them, not instant)
    post_orders(world, 5)
    instant = Instant(world)

    # When the stream delivers the window's postings
    outcome = instant.deliver(world.postings())

    # Then one payout of 150 reached the bank, its id derived from party and window
    [(party, amount, payout)] = paid_by_bank(world)
    assert (party, amount) == ("merchant:m1", 150) and outcome.paid == [payout] and is_payout(payout)
    assert payout.startswith("ipo_20260309100000_")
    # And every posting of the merchant is settled by it; the brand's wait for the scheduled run
    assert all(p["run_id"] == payout and p["settled"] for p in merchant_postings(world))
    assert all("run_id" not in p for p in world.postings() if p["account"] == "brand:b1")
    # And its settlement journal sums to 0 and the merchant's balance is 0 again
    journal = world.ledger.journal(f"jnl_{rules.instruction_id(payout, 'merchant:m1', 'CNY')}")
    assert sum(leg["amount"] for leg in journal["legs"]) == 0
    assert world.ledger.balance("merchant:m1") == {"CNY": 0}
    # And the instant statement of the day shows it, and an event was emitted
    [line] = instant.store.statement("merchant:m1", "2026-03-10")  # the clock's day in Shanghai
    assert (line["payout_id"], line["amount"], line["postings"]) == (payout, 150, 5)
    assert [kind for kind, _ in instant.events] == ["InstantPayoutSent"]
    assert world.store.run(payout)["status"] == "CLOSED"


def test_a_scheduled_merchant_is_not_paid_instantly(world):
    post_orders(world, 2)
    instant = Instant(world, terms=InstantTerms())  # the tenant's default: SCHEDULED
    assert instant.deliver(world.postings()).paid == [] and world.bank.accepted() == []
    # Its own setting overrides the tenant's
    instant.store.set_mode("m1", "INSTANT", at="2026-03-09T10:00:00Z", by="admin")
    assert len(instant.deliver(world.postings()).paid) == 1


def post_campaign_orders(world, campaign, n=2, *, amount=30, merchant="merchant:m1"):
    for i in range(n):
        world.ledger.post(
            Journal(
                journal_id=f"jnl_rdm_{campaign}_{i}", source_id=f"rdm_{campaign}_{i}", kind="REDEMPTION",
                currency="CNY", legs=(Leg("brand:b1", -amount), Leg(merchant, amount)), party_shares={},
            ),
            business_date=DAY, due_date=DAY, posted_at=f"{DAY}T12:00:00Z",
            extra={"redemption_id": f"rdm_{campaign}_{i}", "merchant_id": "m1", "campaign_id": campaign},
        )  # fmt: skip


def test_a_scheduled_merchants_posting_of_an_instant_campaign_is_paid_instantly_the_others_by_the_run(world):
    # Given a SCHEDULED merchant (the tenant's default) with orders of two campaigns, one made INSTANT
    post_campaign_orders(world, "c-fast", 2, amount=30)
    post_campaign_orders(world, "c-slow", 3, amount=40)
    instant = Instant(world, terms=InstantTerms())
    instant.store.set_campaign_mode("c-fast", "INSTANT", at="2026-03-09T10:00:00Z", by="admin")
    instant.store.set_campaign_mode("c-slow", "SCHEDULED", at="2026-03-09T10:00:00Z", by="admin")
    reads = []

    def seen(params, **_):
        reads.append(params)

    # When the stream delivers the window's postings
    world.ddb.meta.events.register("before-parameter-build.dynamodb.BatchGetItem", seen)
    try:
        outcome = instant.deliver(world.postings())
    finally:
        world.ddb.meta.events.unregister("before-parameter-build.dynamodb.BatchGetItem", seen)

    # Then the INSTANT campaign's two postings are one payout of 60; the other campaign's wait for the run
    [(party, amount, payout)] = paid_by_bank(world)
    assert (party, amount) == ("merchant:m1", 60) and outcome.paid == [payout]
    by_campaign = {}
    for p in merchant_postings(world):
        by_campaign.setdefault(p["campaign_id"], []).append(p.get("run_id"))
    assert by_campaign == {"c-fast": [payout, payout], "c-slow": [None, None, None]}
    # And the merchants' and the campaigns' modes were read in one BatchGetItem
    modes = [
        r for r in reads
        if any(k["sk"]["S"] == "SETTLEMENT" for t in r["RequestItems"].values() for k in t["Keys"])
    ]  # fmt: skip
    assert len(modes) == 1
    # And the next scheduled run pays the rest, once
    world.settle()
    assert world.paid()["merchant:m1"] == 120
    assert sum(r["amount"] for r in world.bank.records() if r["party"] == "merchant:m1") == 180


def test_a_redelivered_batch_pays_nothing_twice_and_appends_nothing_twice(world):
    post_orders(world, 3)
    instant = Instant(world)
    first = instant.deliver(world.postings())
    # When the same batch comes again (Lambda retried it from a failed record), and again a window later
    again = instant.deliver(world.postings())
    later = instant.deliver(world.postings(), at=datetime(2026, 3, 9, 10, 5, tzinfo=UTC))
    # Then one payout, one bank record, one statement line
    assert len(first.paid) == 1 and again.paid == [] and later.paid == []
    assert len(world.bank.accepted()) == 1
    assert len(instant.store.statement("merchant:m1", "2026-03-10")) == 1


def test_a_redelivery_after_a_crash_before_sending_finishes_the_same_payout(world):
    post_orders(world, 3)
    instant = Instant(world)
    original = instant.service._steps.pay
    instant.service._steps.pay = lambda *a, **k: (_ for _ in ()).throw(SystemExit("Lambda timed out"))
    with pytest.raises(SystemExit):
        instant.deliver(world.postings())
    instant.service._steps.pay = original
    # When the batch comes again (a window later: the delivery time differs)
    outcome = instant.deliver(world.postings(), at=datetime(2026, 3, 9, 10, 3, tzinfo=UTC))
    # Then the payout the first attempt claimed is finished: one payout of all three
    assert len(outcome.paid) == 1 and paid_by_bank(world)[0][:2] == ("merchant:m1", 90)
    assert len(world.bank.accepted()) == 1


def test_a_run_and_an_instant_payout_racing_for_the_same_postings_pay_each_posting_once(world):
    # Given 20 postings of an instant merchant, due today
    post_orders(world, 20, amount=10)
    shared = OneRequestAtATime(world.ddb)
    instant = Instant(world, client=shared)
    run_steps = world.make_steps(shared)
    world.open()
    barrier = threading.Barrier(2)
    errors = []

    def run_claims():
        barrier.wait()
        try:
            for shard in range(SHARDS):
                run_steps.claim(rules.run_id(DAY), DAY, shard)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    def instant_payout():
        barrier.wait()
        try:
            instant.deliver(world.postings())
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    # When the run's claims and the instant payout race
    threads = [threading.Thread(target=run_claims), threading.Thread(target=instant_payout)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # And the run settles what it claimed
    for batch in world.batches():
        world.steps.pay(rules.run_id(DAY), DAY, batch["parties"])
        world.steps.mark_settled(rules.run_id(DAY), batch["parties"])
    # Then every posting of the merchant belongs to exactly one of them, and what the bank moved for
    # the merchant is what cleared for it (200): paid instantly, by the run, or carried by the run below
    # its minimum transfer into the next one; each posting once
    owners = [p["run_id"] for p in merchant_postings(world)]
    assert len(owners) == 20 and all(owners)
    moved = sum(r["amount"] for r in world.bank.records() if r["party"] == "merchant:m1")
    by_run = world.store.party(rules.run_id(DAY), "merchant:m1")
    carried = by_run["currencies"]["CNY"]["carried"] if by_run else 0
    assert moved + carried == 200


def test_a_channel_failing_after_the_retries_leaves_the_postings_visibly_to_the_next_run(world):
    post_orders(world, 4, amount=50)
    instant = Instant(world)
    world.bank.inject("merchant:m1", "fail", times=3)
    # When the batch fails three times (the stream redelivers it after each)
    outcomes = [instant.deliver(world.postings()) for _ in range(3)]
    # Then the first two are retried, the third gives the postings back
    assert [o.failed for o in outcomes[:2]] == [["merchant:m1"], ["merchant:m1"]]
    [payout] = outcomes[2].left
    assert world.store.run(payout)["status"] == LEFT_TO_RUN
    assert world.store.party(payout, "merchant:m1")["currencies"]["CNY"]["status"] == LEFT_TO_RUN
    postings = merchant_postings(world)
    assert all(
        "run_id" not in p and p["left_by_payout"] == payout and p["gsi1pk"].startswith("UNSETTLED#")
        for p in postings
    )
    assert world.store.lines(payout, "merchant:m1") == []
    assert [kind for kind, _ in instant.events] == ["InstantPayoutLeftToRun"]
    assert instant.events[0][1]["amounts"] == {"CNY": 200}
    # And a redelivery does not take them again
    assert instant.deliver(world.postings()).paid == []
    # And the next scheduled run pays them, once
    world.settle()
    assert world.paid()["merchant:m1"] == 200
    assert sum(r["amount"] for r in world.bank.records() if r["party"] == "merchant:m1") == 200


class StatusHook:
    """The channel, with `hook()` run once inside the next `status` call: what another invocation does
    while this one is between asking the channel and sending."""

    def __init__(self, bank):
        self.bank, self.hook, self.in_hook = bank, None, False

    def send(self, instruction):
        if self.in_hook:  # the other invocation's attempt fails, as its last allowed one
            raise ChannelUnavailable("the channel is unavailable to the other invocation")
        return self.bank.send(instruction)

    def status(self, instruction_id):
        hook, self.hook = self.hook, None
        if hook is not None:
            self.in_hook = True
            try:
                hook()
            finally:
                self.in_hook = False
        return self.bank.status(instruction_id)


def test_a_payout_given_up_while_another_invocation_is_sending_it_is_not_given_up(world):
    """Two invocations of one payout (a party's postings on two stream shards). A retries a failed send:
    it asks the channel (nothing under the id), then sends. Between the two, B fails its attempt (the
    last one allowed) and would give the postings back to the runs: the channel would then pay them
    twice, once now, once by the next run. B must stand down while A holds the transfer."""
    post_orders(world, 4, amount=50)
    instant = Instant(world, terms=InstantTerms(default_mode=SettlementMode.INSTANT, max_attempts=2))
    channel = StatusHook(world.bank)
    instant.service._channel = instant.service._steps._channel = lambda: channel
    world.bank.inject("merchant:m1", "fail", times=1)
    assert instant.deliver(world.postings()).failed == ["merchant:m1"]  # attempt 1: INSTRUCTED, not sent

    def b_fails_its_last_attempt():
        b = instant.deliver(world.postings())
        assert b.left == [], "B gave the postings back while A was sending them"

    channel.hook = b_fails_its_last_attempt
    a = instant.deliver(world.postings())
    # Then A's payout is the one payment: SENT, its postings settled by it, none left to the runs
    assert len(a.paid) == 1, a
    [payout] = a.paid
    assert world.store.party(payout, "merchant:m1")["currencies"]["CNY"]["status"] == "SENT"
    assert all(p["run_id"] == payout and "left_by_payout" not in p for p in merchant_postings(world))
    world.settle()
    assert sum(r["amount"] for r in world.bank.records() if r["party"] == "merchant:m1") == 200


def test_a_send_lease_left_by_a_crashed_invocation_delays_the_give_up_until_it_expires(world):
    """An invocation that died between taking the lease and sending (Lambda timed out) never releases it:
    the give-up waits until no invocation can still be alive (Lambda's longest timeout), then happens."""
    post_orders(world, 4, amount=50)
    instant = Instant(world, terms=InstantTerms(default_mode=SettlementMode.INSTANT, max_attempts=2))
    world.bank.inject("merchant:m1", "fail", times=2)  # the two sends below: the lease held skips one
    assert instant.deliver(world.postings()).failed == ["merchant:m1"]  # attempt 1, its lease released
    [payout] = {p["run_id"] for p in merchant_postings(world)}  # claimed by the payout
    # The crashed invocation: it took the lease and died
    assert world.store.set_transfer(payout, "merchant:m1", "CNY", {"sending_at": iso(world.clock())},
                                    from_status="INSTRUCTED")  # fmt: skip

    # When the last attempt fails while the lease is live: nothing is given up
    held = instant.deliver(world.postings())
    assert held.left == [] and held.failed == ["merchant:m1"]
    assert world.store.party(payout, "merchant:m1")["currencies"]["CNY"]["status"] == "INSTRUCTED"

    # When it comes again after the lease expired, with the channel still failing: it is given up
    world.clock.now += timedelta(seconds=SEND_LEASE_S + 1)
    assert instant.deliver(world.postings()).left == [payout]
    world.settle()
    assert sum(r["amount"] for r in world.bank.records() if r["party"] == "merchant:m1") == 200
