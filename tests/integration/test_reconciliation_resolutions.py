"""Finance's resolutions post their journals (on moto): what the compensation booked to suspense is
emptied to the side the action chooses, once, whoever retries; the API records, the reconciliation
function posts (the API writes no ledger item)."""

from __future__ import annotations

import pytest

from coupons.domain.errors import Conflict
from coupons.domain.ledger import Journal, Leg
from coupons.domain.principals import parse_principal
from coupons.domain.reconciliation.differences import Difference, Injection
from coupons.services.reconciliation_review import Review
from tests.integration import test_reconciliation_run
from tests.integration.test_reconciliation_internal import M1
from tests.integration.test_reconciliation_run import STATEMENT_DAY

FINANCE = parse_principal("finance")

recon = test_reconciliation_run.recon  # the fixture: a settled day on moto


def review(recon):
    return Review(recon.store, four_eyes=False, ledger=recon.world.ledger, clock=recon.world.clock)


def only(recon, cls):
    [found] = [e for (c, _), e in recon.exceptions().items() if c == cls]
    return found


def test_accepting_a_fee_above_tolerance_moves_it_from_suspense_to_the_fee_bearer_once(recon):
    recon.run(recon.publish([Injection(Difference.FEE, M1, 300)]))  # the fixture's tolerance is 100
    fee = only(recon, "FEE_MISMATCH")
    assert recon.world.ledger.balance("suspense:simulated") == {"CNY": -300}
    platform_before = recon.world.ledger.balance("platform").get("CNY", 0)

    status, body = review(recon).resolve(fee["exception_id"], "ACCEPT_CHANNEL", "new fee schedule", FINANCE)
    first = recon.service.post_resolutions()
    again = recon.service.post_resolutions()

    assert status == 200 and body["resolution"]["journal"]["legs"] == [
        {"account": "suspense:simulated", "amount": 300}, {"account": "platform", "amount": -300}]  # fmt: skip
    assert (first, again) == (1, 0)
    assert recon.world.ledger.balance("suspense:simulated") == {"CNY": 0}
    assert recon.world.ledger.balance("platform")["CNY"] == platform_before - 300
    journal = recon.world.ledger.journal(body["resolution"]["journal"]["journal_id"])
    assert journal["source_id"] == fee["exception_id"] and sum(x["amount"] for x in journal["legs"]) == 0


def test_a_retried_resolution_posts_nothing_twice(recon):
    recon.run(recon.publish([Injection(Difference.FEE, M1, 300)]))
    fee = only(recon, "FEE_MISMATCH")
    review(recon).resolve(fee["exception_id"], "WRITE_OFF", "absorbed", FINANCE, account="expense:bank-fees")
    recon.service.post_resolutions()
    before = recon.world.table()

    with pytest.raises(Conflict):
        review(recon).resolve(
            fee["exception_id"], "WRITE_OFF", "absorbed", FINANCE, account="expense:bank-fees"
        )
    recon.service.post_resolutions()

    assert recon.world.table() == before
    assert recon.world.ledger.balance("expense:bank-fees") == {"CNY": -300}


def test_a_write_off_of_the_ledgers_own_difference_empties_suspense_into_the_named_account(recon):
    recon.world.ledger.post(
        Journal(journal_id="jnl_stray", source_id="stray", kind="MANUAL", currency="CNY",
                legs=(Leg("settlement:simulated", 70), Leg("platform", -70)), party_shares={}),
        business_date=STATEMENT_DAY, due_date=STATEMENT_DAY, posted_at=f"{STATEMENT_DAY}T02:00:00Z", extra={},
    )  # fmt: skip
    recon.run(recon.publish(""))
    exc = only(recon, "INTERNAL_MISMATCH")

    review(recon).resolve(
        exc["exception_id"], "WRITE_OFF", "a manual journal in error", FINANCE, account="platform"
    )
    recon.service.post_resolutions()

    assert recon.world.ledger.balance("suspense:simulated") == {"CNY": 0}
    assert recon.world.ledger.balance("settlement:simulated") == {"CNY": 0}


def test_reversing_a_compensation_undoes_its_journal_leg_by_leg(recon):
    recon.run(recon.publish([Injection(Difference.UNKNOWN, M1)]))
    unknown = only(recon, "UNKNOWN_AT_CHANNEL")
    assert recon.world.ledger.balance("suspense:simulated") != {"CNY": 0}
    line = unknown["theirs"]
    moved = line["amount"] if line["type"] == "PAYOUT" else -line["amount"]
    bank_before = recon.world.ledger.balance("bank:simulated")["CNY"]

    review(recon).resolve(unknown["exception_id"], "REVERSE", "the channel took it back", FINANCE)
    recon.service.post_resolutions()

    assert recon.world.ledger.balance("suspense:simulated") == {"CNY": 0}
    assert recon.world.ledger.balance("bank:simulated")["CNY"] == bank_before - moved


def test_the_next_runs_complete_posts_a_pending_resolution(recon):
    recon.run(recon.publish([Injection(Difference.FEE, M1, 300)]))
    fee = only(recon, "FEE_MISMATCH")
    review(recon).resolve(fee["exception_id"], "ACCEPT_CHANNEL", "ok", FINANCE)

    from coupons.services.channel_statements import publish_statement

    recon.run(publish_statement(recon.world.bank, recon.files, channel_name="simulated", statement_date="2026-03-11",
                                time_zone="Asia/Shanghai"))  # fmt: skip

    assert recon.world.ledger.balance("suspense:simulated") == {"CNY": 0}
    assert recon.store.pending_resolutions() == []


def test_the_runs_are_listed_after_a_run_that_found_a_ledger_difference(recon):
    recon.run(recon.publish(""))

    runs, _ = review(recon).runs(limit=10, cursor=None, date=None)

    assert [r["statement_date"] for r in runs] == [STATEMENT_DAY]
