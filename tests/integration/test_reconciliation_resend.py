"""Finance's RESEND (on moto): the API records the choice, the reconciliation function's
post_resolutions step sends the same instruction (the same id) through the channel, once, whoever
retries; what was sent and the channel's answer are on the exception, and a refusal leaves it OPEN."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from coupons.data.models.bank import INSTRUCTION_SK, BankInstruction, instruction_pk
from coupons.domain.principals import parse_principal
from coupons.services.channel_statements import publish_statement
from coupons.services.reconciliation_review import Review
from tests.integration import test_reconciliation_run
from tests.integration.test_reconciliation_internal import M1
from tests.integration.test_settlement_steps import BANK_TABLE

FINANCE = parse_principal("finance")
LATER = "2026-03-12"  # two days after the transfers' date: a TIMING still waiting is escalated

recon = test_reconciliation_run.recon  # the fixture: a settled day on moto


def lost_by_the_bank_and_escalated(recon) -> dict:
    """merchant:m1's payout never reached the bank (its record gone), and no statement showed it for
    two days: the TIMING escalated to finance, OPEN."""
    BankInstruction.bound(recon.world.ddb, BANK_TABLE).get(instruction_pk(M1), INSTRUCTION_SK).delete()
    recon.world.clock.now = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)
    recon.run(publish_statement(recon.world.bank, recon.files, channel_name="simulated", statement_date=LATER,
                                time_zone="Asia/Shanghai"))  # fmt: skip
    [found] = [e for e in recon.store.exceptions(limit=100, cursor=None)[0] if e["key"] == M1]
    assert (found["cls"], found["status"], found["action"]) == ("TIMING", "OPEN", "ESCALATE")
    return found


def resend(recon, exception_id: str) -> dict:
    review = Review(recon.store, four_eyes=False, ledger=recon.world.ledger, clock=recon.world.clock)
    status, body = review.resolve(exception_id, "RESEND", "the bank never got it", FINANCE)
    assert status == 200
    return body


def at_the_bank(recon) -> list[dict]:
    return [r for r in recon.world.bank.records() if r["instruction_id"] == M1]


def test_a_resend_resolution_is_sent_by_the_post_resolutions_step_once_even_when_the_step_runs_twice(recon):
    exc = lost_by_the_bank_and_escalated(recon)
    resolved = resend(recon, exc["exception_id"])
    assert at_the_bank(recon) == []  # the API holds no channel: it records the choice
    assert resolved["resolution"]["resend"]["state"] == "PENDING"

    recon.service.post_resolutions()
    recon.service.post_resolutions()  # the step retried, or run again

    [sent] = at_the_bank(recon)
    ours = exc["ours"]
    assert (sent["party"], sent["amount"], sent["currency"], sent["direction"]) == (
        ours["party"], ours["amount"], ours["currency"], ours["direction"])  # fmt: skip
    after = recon.store.exception(exc["exception_id"])
    assert after["status"] == "RESOLVED"
    assert after["resolution"]["resend"] | {"sent_at": None} == {
        "state": "SENT", "instruction_id": M1, "party": ours["party"], "direction": ours["direction"],
        "amount": ours["amount"], "currency": ours["currency"], "run_id": ours["run_id"],
        "channel_status": "ACCEPTED", "channel_reference": sent["channel_reference"],
        "accepted_at": sent["accepted_at"], "sent_at": None}  # fmt: skip
    assert recon.store.pending_resolutions() == []


def test_a_resend_lost_after_the_channel_accepted_it_is_sent_again_under_the_same_id_and_moves_money_once(recon):
    exc = lost_by_the_bank_and_escalated(recon)
    resend(recon, exc["exception_id"])
    store, recorded = recon.store, recon.store.resend_sent

    def lost(*args, **kwargs):  # the function dies after the channel accepted, before it wrote so
        raise RuntimeError("killed")

    store.resend_sent = lost
    with pytest.raises(RuntimeError):
        recon.service.post_resolutions()
    store.resend_sent = recorded
    recon.service.post_resolutions()

    assert len(at_the_bank(recon)) == 1
    assert recon.store.exception(exc["exception_id"])["resolution"]["resend"]["state"] == "SENT"
    assert recon.store.pending_resolutions() == []


def test_a_resend_the_channel_refuses_reopens_the_exception_with_the_channels_answer(recon):
    exc = lost_by_the_bank_and_escalated(recon)
    resend(recon, exc["exception_id"])
    recon.world.bank.inject("merchant:m1", "reject")

    recon.service.post_resolutions()
    recon.service.post_resolutions()

    assert at_the_bank(recon) == []
    after = recon.store.exception(exc["exception_id"])
    assert after["status"] == "OPEN"  # back with finance, not silently resolved
    assert after["resolution"]["resend"]["state"] == "REFUSED"
    assert "rejected" in after["resolution"]["resend"]["error"]
    last = after["history"][-1]
    assert (last["action"], last["by"]) == ("REOPEN", "system:reconciliation") and "rejected" in last["note"]
    assert recon.store.pending_resolutions() == []


def test_a_resend_the_channel_cannot_take_now_waits_and_is_sent_by_the_next_step(recon):
    exc = lost_by_the_bank_and_escalated(recon)
    resend(recon, exc["exception_id"])
    recon.world.bank.inject("merchant:m1", "fail")

    recon.service.post_resolutions()
    waiting = recon.store.exception(exc["exception_id"])
    recon.service.post_resolutions()

    assert waiting["status"] == "RESOLVED" and waiting["resolution"]["resend"]["state"] == "PENDING"
    assert "unavailable" in waiting["resolution"]["resend"]["error"]
    assert len(at_the_bank(recon)) == 1
    assert recon.store.exception(exc["exception_id"])["resolution"]["resend"]["state"] == "SENT"
