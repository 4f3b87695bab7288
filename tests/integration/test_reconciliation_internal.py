"""Point 5 (b, c) and the channel account on moto: each transfer against its run's party record, the
party's claimed postings against the run's net, and settlement:{channel} against the transfers the
channel has not confirmed. A disagreement is an INTERNAL_MISMATCH exception (review)."""

from __future__ import annotations

from coupons.data.models.settlement import party_pk
from coupons.domain import settlement as rules
from coupons.domain.ledger import Journal, Leg
from tests.integration import test_reconciliation_run
from tests.integration.test_reconciliation_run import STATEMENT_DAY, four_differences
from tests.integration.test_settlement_steps import MAIN_TABLE, RUN

M1 = rules.instruction_id(RUN, "merchant:m1", "CNY")

recon = test_reconciliation_run.recon  # the fixture: a settled day on moto


def internal(recon):
    return {key: e for (cls, key), e in recon.exceptions().items() if cls == "INTERNAL_MISMATCH"}


def test_a_clean_day_shows_no_internal_mismatch(recon):
    done = recon.run(recon.publish(""))

    assert internal(recon) == {}
    assert done["completed"]["by_class"] == {}


def test_a_party_record_whose_net_was_changed_becomes_an_internal_mismatch(recon):
    recon.world.ddb.update_item(
        TableName=MAIN_TABLE, Key={"pk": {"S": party_pk(RUN, "merchant:m1")}, "sk": {"S": "merchant:m1"}},
        UpdateExpression="SET currencies.CNY.net = :n", ExpressionAttributeValues={":n": {"N": "1400"}},
    )  # fmt: skip

    recon.run(recon.publish(""))

    found = internal(recon)
    assert list(found) == [M1]
    exc = found[M1]
    assert exc["status"] == "OPEN" and exc["action"] == "REVIEW" and exc["review"] == 1
    assert exc["amount_at_stake"] == 100
    assert "the postings add up to 1300, the run's net is 1400" in exc["detail"]
    assert "the transfer's journal settled 1300" in exc["detail"]


def test_a_claimed_posting_whose_amount_was_changed_becomes_an_internal_mismatch(recon):
    posting = next(i for i in recon.world.table()
                   if i["pk"].startswith("ENTRIES#merchant:m1#") and i["journal_id"] == "jnl_rdm_2")  # fmt: skip
    recon.world.ddb.update_item(
        TableName=MAIN_TABLE, Key={"pk": {"S": posting["pk"]}, "sk": {"S": posting["sk"]}},
        UpdateExpression="SET amount = :a", ExpressionAttributeValues={":a": {"N": "900"}},
    )  # fmt: skip

    recon.run(recon.publish(""))

    found = internal(recon)
    assert list(found) == [M1]
    assert found[M1]["amount_at_stake"] == 100
    assert "the postings add up to 1200, the run's net is 1300" in found[M1]["detail"]


def test_a_stray_journal_on_the_channels_settlement_account_becomes_an_internal_mismatch_booked_to_suspense(
    recon,
):
    recon.world.ledger.post(
        Journal(journal_id="jnl_stray", source_id="stray", kind="MANUAL", currency="CNY",
                legs=(Leg("settlement:simulated", 70), Leg("platform", -70)), party_shares={}),
        business_date=STATEMENT_DAY, due_date=STATEMENT_DAY, posted_at=f"{STATEMENT_DAY}T02:00:00Z", extra={},
    )  # fmt: skip

    done = recon.run(recon.publish(""))

    found = internal(recon)
    assert list(found) == ["settlement:simulated:CNY"]
    exc = found["settlement:simulated:CNY"]
    assert exc["amount_at_stake"] == 70 and exc["status"] == "OPEN" and exc["action"] == "REVIEW"
    assert recon.store.run(done["run_id"])["exception_ids"] == [exc["exception_id"]]
    assert done["completed"]["by_class"] == {"INTERNAL_MISMATCH": 1}
    assert [o["class"] for o in done["opened"]] == ["INTERNAL_MISMATCH"]
    # Booked to suspense (挂账): the channel's account holds again what the channel has not confirmed.
    assert recon.world.ledger.balance("suspense:simulated") == {"CNY": 70}
    assert recon.world.ledger.balance("settlement:simulated") == {"CNY": 0}


def test_the_ledger_check_after_the_four_compensations_finds_nothing_and_a_replay_adds_nothing(recon):
    published = recon.publish(four_differences())
    first = recon.run(published)
    before = recon.world.table()

    recon.service.complete(first["run_id"])  # a retried Complete step

    assert internal(recon) == {}
    assert recon.world.table() == before


def test_an_amount_mismatch_booked_to_suspense_is_not_counted_again_as_a_ledger_difference(recon):
    from coupons.domain.reconciliation.differences import Difference, Injection

    recon.run(recon.publish([Injection(Difference.AMOUNT, M1, 40)]))

    assert set(cls for cls, _ in recon.exceptions()) == {"AMOUNT_MISMATCH"}
    assert recon.world.ledger.balance("settlement:simulated") == {"CNY": 0}
