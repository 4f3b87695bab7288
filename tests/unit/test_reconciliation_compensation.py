"""Compensation: per class the action and a journal whose integer legs sum to 0, every id derived
from the exception, so a replayed run computes the same compensation."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.ledger import Leg
from coupons.domain.payments import ChannelStatus, Direction, Receipt
from coupons.domain.reconciliation.compensation import Action, Policy, after_query, compensation_id, decide
from coupons.domain.reconciliation.lines import LineStatus, LineType
from coupons.domain.reconciliation.matcher import MatchConfig, match
from coupons.domain.reconciliation.records import ReconException, TransferStatus
from tests.unit._reconciliation import CONFIG, DAY, day, line_for, transfer

POLICY = Policy(fee_tolerance={"CNY": 100}, fee_bearer="platform", duplicates="recover", timing_days=2)


def one(lines, transfers, config=CONFIG, **kw) -> ReconException:
    (exc,) = [x for x in match(lines, transfers, config, **kw)[0] if isinstance(x, ReconException)]
    return exc


def legs(compensation) -> set[tuple[str, int]]:
    return {(leg.account, leg.amount) for leg in compensation.journal.legs}


def test_a_timing_difference_is_held_the_next_day_and_escalated_to_review_at_t_plus_2():
    t = transfer(1, sent_at="2026-11-24T15:59:00.000000Z")
    exc = one([], [t])
    held = decide(exc, POLICY, today="2026-11-25")
    assert (held.action, held.review, held.journal) == (Action.HOLD, False, None)
    escalated = decide(exc, POLICY, today="2026-11-26")
    assert (escalated.action, escalated.review) == (Action.ESCALATE, True)
    assert escalated.compensation_id != held.compensation_id


def test_a_line_booked_on_the_neighbouring_day_closes_and_one_beyond_the_drift_is_escalated():
    (t,), (line,) = day(1)
    near = one([line.with_(value_date="2026-11-23")], [t])
    assert decide(near, POLICY, today=DAY).action is Action.CLOSE
    far = one([line.with_(value_date="2026-11-20")], [t])
    assert decide(far, POLICY, today=DAY).action is Action.ESCALATE


def test_a_missing_transfer_is_asked_for_then_resent_under_the_same_id_or_matched_again():
    t = transfer(1)
    exc = one([], [t])
    assert decide(exc, POLICY, today=DAY).action is Action.QUERY_CHANNEL
    resend = after_query(exc, None)
    assert resend.action is Action.RESEND and resend.transfer == {
        "instruction_id": t.instruction_id, "run_id": t.run_id, "party": t.party,
        "direction": "PAYOUT", "amount": t.amount, "currency": "CNY",
        "fee": t.fee,  # the same instruction: the fee the channel states on its line, as first sent
    }  # fmt: skip
    receipt = Receipt(
        t.instruction_id,
        "SIMBANK-X",
        ChannelStatus.ACCEPTED,
        t.amount,
        "CNY",
        Direction.PAYOUT,
        "2026-11-24T02:00:00Z",
    )
    assert after_query(exc, receipt).action is Action.REMATCH
    other = Receipt(
        t.instruction_id, "SIMBANK-X", ChannelStatus.ACCEPTED, t.amount + 1, "CNY", Direction.PAYOUT, "x"
    )
    assert after_query(exc, other).action is Action.REVIEW


def test_a_failed_payout_is_returned_and_its_settlement_journal_reversed_so_the_party_is_owed_again():
    (t,), (line,) = day(1)
    comp = decide(one([line.with_(status=LineStatus.FAILED)], [t]), POLICY, today=DAY)
    assert (comp.action, comp.review, comp.due_date) == (Action.RETURN_AND_REVERSE, False, "2026-11-25")
    assert legs(comp) == {(t.party, t.amount), ("settlement:simulated", -t.amount)}


def test_a_collection_returned_after_an_earlier_confirmation_is_reversed_against_the_bank():
    (t,), (line,) = day(1, direction="COLLECTION", status=TransferStatus.CONFIRMED, date="2026-11-23")
    comp = decide(one([line.with_(type=LineType.RETURN)], [t]), POLICY, today=DAY)
    assert legs(comp) == {(t.party, -t.amount), ("bank:simulated", t.amount)}


def test_a_fee_difference_within_tolerance_is_adjusted_to_the_channel_s_fee_account():
    (t,), (line,) = day(1)
    comp = decide(one([line.with_(fee=line.fee + 100)], [t]), POLICY, today=DAY)
    assert (comp.action, comp.review) == (Action.ADJUST_FEE, False)
    assert legs(comp) == {("fees:simulated", 100), ("platform", -100)}


def test_a_fee_difference_above_tolerance_goes_to_review_with_the_difference_in_suspense():
    (t,), (line,) = day(1)
    comp = decide(one([line.with_(fee=line.fee - 101)], [t]), POLICY, today=DAY)
    assert (comp.action, comp.review) == (Action.REVIEW, True)
    assert legs(comp) == {("fees:simulated", -101), ("suspense:simulated", 101)}


def test_a_duplicate_payout_is_recovered_from_the_party_by_a_collection_of_a_derived_id():
    (t,), (line,) = day(1)
    exc = one([line, line.with_(line_no=2)], [t])
    comp = decide(exc, POLICY, today=DAY)
    assert comp.action is Action.RECOVER and comp.transfer["direction"] == "COLLECTION"
    assert comp.transfer["instruction_id"].startswith("rcv_20261124_")
    assert (
        comp.transfer["instruction_id"] == decide(exc, POLICY, today="2026-11-30").transfer["instruction_id"]
    )
    assert legs(comp) == {("bank:simulated", t.amount), (t.party, -t.amount)}


def test_a_tenant_that_reviews_duplicates_gets_review_with_the_amount_in_suspense():
    (t,), (line,) = day(1)
    comp = decide(one([line, line.with_(line_no=2)], [t]), Policy(duplicates="review"), today=DAY)
    assert (comp.action, comp.transfer) == (Action.REVIEW, None)
    assert legs(comp) == {("bank:simulated", t.amount), ("suspense:simulated", -t.amount)}


def test_an_unknown_line_goes_to_review_with_what_moved_in_suspense():
    stranger = line_for(transfer(9), 1).with_(type=LineType.COLLECTION, amount=777)
    comp = decide(one([stranger], []), POLICY, today=DAY)
    assert (comp.action, comp.review) == (Action.REVIEW, True)
    assert legs(comp) == {("bank:simulated", -777), ("suspense:simulated", 777)}


def test_an_amount_mismatch_moves_what_was_instructed_off_settlement_and_the_difference_to_suspense():
    (t,), (line,) = day(1)
    comp = decide(one([line.with_(amount=t.amount + 40)], [t]), POLICY, today=DAY)
    assert legs(comp) == {
        ("settlement:simulated", -t.amount),
        ("bank:simulated", t.amount + 40),
        ("suspense:simulated", -40),
    }


def test_a_currency_mismatch_books_the_channel_s_amount_in_its_currency_to_suspense():
    (t,), (line,) = day(1)
    comp = decide(one([line.with_(currency="USD", amount=1400)], [t]), POLICY, today=DAY)
    assert comp.journal.currency == "USD"
    assert legs(comp) == {("bank:simulated", 1400), ("suspense:simulated", -1400)}


def test_a_settlement_account_off_by_an_amount_books_the_difference_to_suspense_for_review():
    transfers, lines = day(1)
    comp = decide(
        one(lines, transfers, settlement_balances={"CNY": transfers[0].amount + 3}), POLICY, today=DAY
    )
    assert legs(comp) == {("settlement:simulated", -3), ("suspense:simulated", 3)}


def test_an_internal_disagreement_of_our_records_goes_to_review_without_a_journal():
    from coupons.domain.reconciliation.records import PartyRecord

    transfers, lines = day(1)
    record = PartyRecord(transfers[0].instruction_id, "merchant:m1", "CNY", "PAYOUT", 10_001, 10_001, 9_999)
    comp = decide(one(lines, transfers, party_records=[record]), POLICY, today=DAY)
    assert (comp.action, comp.review, comp.journal) == (Action.REVIEW, True, None)


def test_compensation_ids_derive_from_the_exception_and_the_action_and_journal_ids_from_them():
    (t,), (line,) = day(1)
    exc = one([line.with_(fee=line.fee + 1)], [t])
    comp = decide(exc, POLICY, today=DAY)
    assert comp.compensation_id == compensation_id(exc.exception_id, Action.ADJUST_FEE)
    assert comp.journal.journal_id == f"jnl_{comp.compensation_id}"
    assert comp.journal.source_id == exc.exception_id


def test_a_journal_that_would_not_balance_is_refused():
    from coupons.domain.ledger import Journal

    with pytest.raises(ValueError, match="does not balance"):
        Journal("j", "s", "RECONCILIATION_REVIEW", "CNY", (Leg("a", 1), Leg("b", -2)), {})


changes = st.fixed_dictionaries(
    {
        "amount": st.integers(-500, 500), "fee": st.integers(-500, 500),
        "status": st.sampled_from(list(LineStatus)), "type": st.sampled_from(list(LineType)),
        "currency": st.sampled_from(["CNY", "CNY", "JPY"]), "value_date": st.sampled_from(["2026-11-22", "2026-11-23", DAY]),
        "drop": st.booleans(), "twice": st.booleans(), "anonymous": st.booleans(),
    }
)  # fmt: skip


@given(st.lists(changes, min_size=1, max_size=12), st.sampled_from(["recover", "review"]))
def test_every_exception_of_any_day_gets_an_action_and_a_balanced_integer_journal_the_same_on_replay(
    edits, duplicates
):
    transfers, lines = day(len(edits), sent_at="2026-11-24T15:58:00.000000Z")
    file = []
    for edit, line in zip(edits, lines, strict=True):
        if edit["drop"]:
            continue
        changed = line.with_(
            amount=max(0, line.amount + edit["amount"]), fee=line.fee + edit["fee"], status=edit["status"],
            type=edit["type"], currency=edit["currency"], value_date=edit["value_date"],
            instruction_id=None if edit["anonymous"] else line.instruction_id,
        )  # fmt: skip
        file += [changed, changed.with_(line_no=changed.line_no + 1000)] if edit["twice"] else [changed]
    policy = Policy(fee_tolerance={"CNY": 200, "JPY": 2}, duplicates=duplicates)
    config = MatchConfig("simulated", DAY)
    first = [
        decide(x, policy, today="2026-11-26")
        for x in match(file, transfers, config)[0]
        if isinstance(x, ReconException)
    ]
    again = [
        decide(x, policy, today="2026-11-26")
        for x in match(file, transfers, config)[0]
        if isinstance(x, ReconException)
    ]
    assert first == again
    for comp in first:
        if comp.journal:
            assert sum(leg.amount for leg in comp.journal.legs) == 0
            assert all(type(leg.amount) is int and leg.amount != 0 for leg in comp.journal.legs)
        assert comp.review == (comp.action in (Action.REVIEW, Action.ESCALATE))


def test_a_payout_returned_in_the_same_file_that_confirms_it_is_reversed_against_the_bank_it_came_back_to():
    (t,), (line,) = day(1)
    back = line.with_(type=LineType.RETURN, channel_reference="SIMBANK-R", line_no=2)
    comp = decide(one([line, back], [t]), POLICY, today=DAY)
    assert legs(comp) == {(t.party, t.amount), ("bank:simulated", -t.amount)}


def test_a_return_line_for_a_payout_whose_own_line_failed_is_not_reversed_twice():
    (t,), (line,) = day(1)
    back = line.with_(type=LineType.RETURN, channel_reference="SIMBANK-R", line_no=2)
    found = [
        x
        for x in match([line.with_(status=LineStatus.FAILED), back], [t], CONFIG)[0]
        if isinstance(x, ReconException)
    ]
    comps = [decide(x, POLICY, today=DAY) for x in found]
    assert sorted(c.action for c in comps) == [Action.RETURN_AND_REVERSE, Action.REVIEW]
    assert sum(1 for c in comps if c.journal) == 1
