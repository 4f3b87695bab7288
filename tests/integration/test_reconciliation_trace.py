"""A reconciled step in the trace (on moto): a redemption's trace shows, after the transfer that settled
it, whether the channel's statement matched that transfer (its file date and state) and any exception
reconciliation opened on it, with its status; before any statement, nothing (never a placeholder)."""

from __future__ import annotations

from coupons.data.audit import AuditStore
from coupons.data.coupons import CouponStore
from coupons.data.trace import TraceReads
from coupons.domain.principals import parse_principal
from coupons.domain.reconciliation.differences import Difference, Injection
from coupons.services.trace import Tracer
from tests.integration import test_reconciliation_run
from tests.integration.test_reconciliation_internal import M1
from tests.integration.test_reconciliation_run import STATEMENT_DAY
from tests.integration.test_settlement_steps import MAIN_TABLE

ADMIN = parse_principal("admin")
recon = test_reconciliation_run.recon  # the fixture: a settled day on moto


def trace(recon, principal=ADMIN) -> list[dict]:
    """jnl_rdm_2 (platform, brand:b1, merchant:m1), as the world posted it, traced as a redemption."""
    world = recon.world
    redemption = {"redemption_id": "rdm_2", "code": "NOCOUPON", "redeemed_at": f"{STATEMENT_DAY}T00:30:00Z",
                  "merchant_id": "m1", "discount": 1000, "currency": "CNY"}  # fmt: skip
    tracer = Tracer(
        redemption_of=lambda rid, p: (redemption, [], None), coupons=CouponStore(world.ddb, MAIN_TABLE),
        ledger=world.ledger, settlement=world.store, reads=TraceReads(world.ddb, MAIN_TABLE),
        audit=AuditStore(world.ddb, MAIN_TABLE, tenant="demo"), reconciliation=recon.store, time_zone="Asia/Shanghai",
    )  # fmt: skip
    return tracer.redemption("rdm_2", principal)["steps"]


def after_the_transfer_of(steps: list[dict], party: str) -> list[dict]:
    at = next(i for i, s in enumerate(steps) if s["step"] in ("settled", "claimed") and s["party"] == party)
    following = []
    for step in steps[at + 1 :]:
        if step["step"] in ("settled", "claimed"):
            break
        following.append(step)
    return following


def test_before_any_statement_the_trace_shows_no_reconciled_step(recon):
    steps = trace(recon)

    assert "reconciled" not in [s["step"] for s in steps]
    assert after_the_transfer_of(steps, "merchant:m1") == []


def test_a_transfer_matched_against_the_channels_statement_shows_a_reconciled_step_after_it(recon):
    recon.run(recon.publish(""))

    [reconciled] = after_the_transfer_of(trace(recon), "merchant:m1")

    assert reconciled | {"at": None, "run_id": None, "audit_entry_ids": None} == {
        "step": "reconciled", "actor": "reconciliation", "instruction_id": M1, "status": "CONFIRMED",
        "statement_date": STATEMENT_DAY, "at": None, "run_id": None, "audit_entry_ids": None}  # fmt: skip
    assert reconciled["run_id"].startswith("rcn_") and reconciled["at"]


def test_a_transfer_in_an_open_exception_shows_it_with_its_class_and_status(recon):
    recon.run(recon.publish([Injection(Difference.FEE, M1, 300)]))  # above the fixture's tolerance: review
    [fee] = [e for e in recon.exceptions().values() if e["cls"] == "FEE_MISMATCH"]

    steps = after_the_transfer_of(trace(recon), "merchant:m1")

    assert [s["step"] for s in steps] == ["reconciled", "reconciliation_exception"]
    exception = steps[1]
    assert {k: exception[k] for k in ("exception_id", "class", "status", "action", "amount_at_stake", "currency")} == {
        "exception_id": fee["exception_id"], "class": "FEE_MISMATCH", "status": "OPEN", "action": "REVIEW",
        "amount_at_stake": 300, "currency": "CNY"}  # fmt: skip
    assert exception["at"] == fee["opened_at"] and exception["actor"] == "reconciliation"


def test_a_merchant_sees_the_reconciliation_of_its_own_transfer_only(recon):
    recon.run(recon.publish(""))

    steps = trace(recon, parse_principal("merchant:m1"))

    assert [s["instruction_id"] for s in steps if s["step"] == "reconciled"] == [M1]
