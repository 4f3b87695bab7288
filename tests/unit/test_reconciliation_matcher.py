"""The matcher: every difference between the channel's lines and our transfers (and the run's
records, and the ledger) becomes exactly one exception of its class, with both sides' evidence;
what matches becomes a Confirmation; replays give the same ids."""

import pytest

from coupons.domain.reconciliation.lines import LineStatus, LineType
from coupons.domain.reconciliation.matcher import (
    Confirmation,
    MatchConfig,
    Matcher,
    bucket_of,
    match,
    settle_leftovers,
)
from coupons.domain.reconciliation.records import ExceptionClass as C
from coupons.domain.reconciliation.records import PartyRecord, ReconException, TransferStatus, exception_id
from tests.unit._reconciliation import CHANNEL, CONFIG, DAY, day, line_for, transfer


def exceptions(out):
    return [x for x in out if isinstance(x, ReconException)]


def confirmations(out):
    return [x for x in out if isinstance(x, Confirmation)]


def only(out) -> ReconException:
    (single,) = exceptions(out)
    return single


def test_a_statement_that_shows_every_transfer_as_instructed_confirms_all_and_raises_nothing():
    transfers, lines = day(5)
    out, report = match(lines, transfers, CONFIG)
    assert exceptions(out) == []
    assert sorted(c.instruction_id for c in confirmations(out)) == [t.instruction_id for t in transfers]
    assert (report.lines, report.transfers, report.confirmed) == (5, 5, 5)
    assert report.confirmed_amount == {"CNY": sum(t.amount for t in transfers)}


def test_a_transfer_the_channel_does_not_show_is_missing_at_the_channel_with_our_evidence_only():
    transfers, lines = day(3)
    out, _ = match(lines[:1] + lines[2:], transfers, CONFIG)
    exc = only(out)
    assert (exc.cls, exc.key, exc.amount_at_stake, exc.currency) == (
        C.MISSING_AT_CHANNEL,
        transfers[1].instruction_id,
        10_002,
        "CNY",
    )
    assert exc.ours == transfers[1].evidence() and exc.theirs is None
    assert exc.exception_id == exception_id(DAY, CHANNEL, C.MISSING_AT_CHANNEL, transfers[1].instruction_id)
    assert "ask the channel" in exc.suggested_action


def test_a_line_we_never_instructed_is_unknown_at_the_channel_keyed_by_its_reference():
    transfers, lines = day(2)
    stranger = line_for(transfer(99), 3)
    out, _ = match(lines + [stranger], transfers, CONFIG)
    exc = only(out)
    assert (exc.cls, exc.key, exc.ours, exc.theirs) == (
        C.UNKNOWN_AT_CHANNEL,
        stranger.channel_reference,
        None,
        stranger.evidence(),
    )


def test_another_amount_is_an_amount_mismatch_with_the_signed_difference_and_no_confirmation():
    transfers, lines = day(2)
    out, _ = match([lines[0], lines[1].with_(amount=lines[1].amount + 150)], transfers, CONFIG)
    exc = only(out)
    assert (exc.cls, exc.amount_at_stake, exc.facts["difference"]) == (C.AMOUNT_MISMATCH, 150, 150)
    assert [c.instruction_id for c in confirmations(out)] == [transfers[0].instruction_id]


def test_a_collection_shown_as_a_payout_is_an_amount_mismatch_of_twice_the_amount():
    (t,), (line,) = day(1, direction="COLLECTION")
    exc = only(match([line.with_(type=LineType.PAYOUT)], [t], CONFIG)[0])
    assert (exc.cls, exc.facts["difference"]) == (C.AMOUNT_MISMATCH, 2 * t.amount)


def test_another_fee_is_a_fee_mismatch_and_the_transfer_is_still_confirmed():
    (t,), (line,) = day(1)
    out, _ = match([line.with_(fee=75)], [t], CONFIG)
    exc = only(out)
    assert (exc.cls, exc.facts["difference"], exc.amount_at_stake) == (C.FEE_MISMATCH, 15, 15)
    assert len(confirmations(out)) == 1


@pytest.mark.parametrize("status", [LineStatus.FAILED, LineStatus.RETURNED])
def test_a_failed_or_returned_line_while_we_think_it_sent_is_a_status_mismatch(status):
    (t,), (line,) = day(1)
    out, _ = match([line.with_(status=status)], [t], CONFIG)
    exc = only(out)
    assert (exc.cls, exc.facts["outcome"], exc.facts["confirmed"], exc.amount_at_stake) == (
        C.STATUS_MISMATCH,
        str(status),
        False,
        t.amount,
    )
    assert confirmations(out) == []


def test_a_return_line_after_the_payout_is_a_status_mismatch_of_its_own_and_the_payout_is_confirmed():
    (t,), (line,) = day(1)
    back = line.with_(type=LineType.RETURN, channel_reference="SIMBANK-R", line_no=2)
    out, _ = match([line, back], [t], CONFIG)
    exc = only(out)
    assert (exc.cls, exc.key, exc.theirs["channel_reference"]) == (
        C.STATUS_MISMATCH,
        f"{t.instruction_id}/RETURN",
        "SIMBANK-R",
    )
    assert len(confirmations(out)) == 1


def test_a_return_of_a_transfer_confirmed_on_an_earlier_day_is_a_status_mismatch_and_nothing_is_missing():
    (t,), (line,) = day(1, status=TransferStatus.CONFIRMED, date="2026-11-23")
    out, _ = match([line.with_(type=LineType.RETURN)], [t], CONFIG)
    exc = only(out)
    assert (exc.cls, exc.facts["confirmed"]) == (C.STATUS_MISMATCH, True)


def test_an_already_returned_transfer_expects_its_failed_line_and_raises_nothing_on_a_replay():
    (t,), (line,) = day(1, status=TransferStatus.RETURNED)
    assert (
        match(
            [line.with_(status=LineStatus.FAILED), line.with_(type=LineType.RETURN, line_no=9)], [t], CONFIG
        )[0]
        == []
    )


def test_the_same_line_twice_is_one_match_and_one_duplicate_at_the_channel():
    (t,), (line,) = day(1)
    out, _ = match([line, line.with_(line_no=7)], [t], CONFIG)
    exc = only(out)
    assert (exc.cls, exc.key, exc.theirs["line_no"]) == (C.DUPLICATE_AT_CHANNEL, f"{t.instruction_id}#2", 7)
    assert len(confirmations(out)) == 1


def test_a_transfer_confirmed_by_an_earlier_file_appearing_again_is_a_duplicate():
    (t,), (line,) = day(1, status=TransferStatus.CONFIRMED, date="2026-11-23")
    exc = only(match([line], [t], CONFIG)[0])
    assert (exc.cls, exc.key) == (C.DUPLICATE_AT_CHANNEL, f"{t.instruction_id}@{DAY}#1")


def test_another_currency_is_one_currency_mismatch_and_amounts_are_not_compared():
    (t,), (line,) = day(1)
    exc = only(match([line.with_(currency="USD", amount=1, fee=0)], [t], CONFIG)[0])
    assert (exc.cls, exc.currency, exc.amount_at_stake) == (C.CURRENCY_MISMATCH, "USD", 1)


def test_a_line_booked_the_day_before_is_timing_and_still_confirms_the_money():
    (t,), (line,) = day(1)
    out, _ = match(
        [line.with_(value_date="2026-11-23", channel_time="2026-11-23T23:59:00+08:00")], [t], CONFIG
    )
    exc = only(out)
    assert (exc.cls, exc.facts["waiting"], exc.facts["days_off"], exc.facts["beyond_drift"]) == (
        C.TIMING,
        False,
        -1,
        False,
    )
    assert len(confirmations(out)) == 1


def test_a_transfer_sent_just_before_the_channel_s_midnight_and_not_shown_is_timing_not_missing():
    t = transfer(1, sent_at="2026-11-24T15:50:00.000000Z")  # 23:50 in Shanghai, within 15 minutes of midnight
    exc = only(match([], [t], CONFIG)[0])
    assert (exc.cls, exc.facts["waiting"], exc.facts["days_open"]) == (C.TIMING, True, 0)
    early = transfer(2, sent_at="2026-11-24T15:40:00.000000Z")
    assert only(match([], [early], CONFIG)[0]).cls is C.MISSING_AT_CHANNEL


def test_a_timing_held_open_keeps_its_id_until_its_line_arrives_and_the_confirmation_closes_it():
    t = transfer(1, sent_at="2026-11-23T15:55:00.000000Z", date="2026-11-23")
    day_before = MatchConfig(CHANNEL, "2026-11-23")
    opened = only(match([], [t], day_before)[0])
    still = only(match([], [t], CONFIG)[0])
    assert opened.cls is still.cls is C.TIMING
    assert opened.exception_id == still.exception_id and still.facts["days_open"] == 1
    out, _ = match([line_for(t).with_(value_date=DAY)], [t], CONFIG)
    (confirmation,) = out
    assert confirmation.closes == opened.exception_id


def test_a_transfer_dated_after_the_statement_is_not_expected_yet():
    assert match([], [transfer(1, date="2026-11-25")], CONFIG)[0] == []


def test_a_line_without_our_id_matches_a_missing_transfer_by_amount_and_day_within_the_drift():
    transfers, lines = day(3)
    anonymous = lines[1].with_(instruction_id=None, value_date="2026-11-23")
    out, _ = match([lines[0], anonymous, lines[2]], transfers, CONFIG)
    exc = only(out)
    assert (exc.cls, exc.key) == (C.TIMING, transfers[1].instruction_id)  # matched, booked a day off
    assert len(confirmations(out)) == 3


def test_a_line_without_our_id_beyond_the_drift_or_of_another_amount_is_unknown_and_the_transfer_missing():
    transfers, lines = day(2)
    far = lines[1].with_(instruction_id=None, value_date="2026-11-21")
    out, _ = match([lines[0], far], transfers, CONFIG)
    assert sorted(x.cls for x in exceptions(out)) == [C.MISSING_AT_CHANNEL, C.UNKNOWN_AT_CHANNEL]


def test_of_two_candidates_the_nearest_day_then_the_smallest_id_is_chosen():
    a, b = transfer(1, amount=500, date="2026-11-23"), transfer(2, amount=500)
    c = transfer(3, amount=500)
    line = line_for(b).with_(instruction_id=None)
    assert [x.instruction_id for x in confirmations(match([line], [a, b, c], CONFIG)[0])] == [
        b.instruction_id
    ]


def test_each_aspect_that_differs_on_one_line_is_its_own_exception():
    (t,), (line,) = day(1)
    out, _ = match([line.with_(amount=line.amount + 1, fee=0, status=LineStatus.FAILED)], [t], CONFIG)
    assert sorted(x.cls for x in exceptions(out)) == [C.AMOUNT_MISMATCH, C.FEE_MISMATCH, C.STATUS_MISMATCH]


def test_the_run_s_party_records_and_postings_are_checked_against_each_transfer():
    transfers, lines = day(3)
    records = [
        PartyRecord(transfers[0].instruction_id, "merchant:m1", "CNY", "PAYOUT", 10_001, 10_001, 10_001),
        PartyRecord(transfers[1].instruction_id, "merchant:m2", "CNY", "PAYOUT", 10_002, 10_002, 10_000),
        PartyRecord("ins_20261124_zzzz", "merchant:m9", "CNY", "PAYOUT", 700, 700, 700),
    ]
    out, _ = match(lines, transfers, CONFIG, party_records=records)
    found = {(x.cls, x.key): x for x in exceptions(out)}
    assert set(found) == {
        (C.INTERNAL_MISMATCH, k)
        for k in (transfers[1].instruction_id, transfers[2].instruction_id, "ins_20261124_zzzz")
    }
    assert found[(C.INTERNAL_MISMATCH, transfers[1].instruction_id)].amount_at_stake == 2
    assert "without a party record" in found[(C.INTERNAL_MISMATCH, transfers[2].instruction_id)].detail


def test_the_settlement_account_must_hold_exactly_the_unconfirmed_transfers():
    transfers, lines = day(2)
    transfers.append(transfer(3, direction="COLLECTION", amount=300))
    lines.append(line_for(transfers[2], 3))
    held = 10_001 + 10_002 - 300
    assert exceptions(match(lines, transfers, CONFIG, settlement_balances={"CNY": held})[0]) == []
    exc = only(match(lines, transfers, CONFIG, settlement_balances={"CNY": held + 5, "USD": 0})[0])
    assert (exc.cls, exc.key, exc.facts["difference"]) == (C.INTERNAL_MISMATCH, "settlement:simulated:CNY", 5)


def test_replaying_the_same_file_gives_the_same_exceptions_with_the_same_ids():
    transfers, lines = day(6)
    bad = [
        lines[0],
        lines[1].with_(fee=1),
        lines[2],
        lines[2].with_(line_no=99),
        lines[4].with_(currency="JPY"),
        line_for(transfer(42), 50),
    ]
    first, _ = match(bad, transfers, CONFIG)
    again, _ = match(list(reversed(bad)), list(reversed(transfers)), CONFIG)
    assert [x.exception_id for x in exceptions(first)] == [x.exception_id for x in exceptions(again)]
    assert len({x.exception_id for x in exceptions(first)}) == len(exceptions(first)) == 6


def test_streams_must_be_sorted_by_instruction_id():
    transfers, lines = day(2)
    with pytest.raises(ValueError, match="sorted"):
        list(Matcher(CONFIG).run(list(reversed(lines)), transfers))
    with pytest.raises(ValueError, match="without repeats"):
        list(Matcher(CONFIG).run(lines, [transfers[0], transfers[0]]))


def test_matching_bucket_by_bucket_then_the_leftovers_gives_what_one_stream_gives():
    transfers, lines = day(40)
    lines = [x for i, x in enumerate(lines) if i % 7] + [
        lines[3].with_(instruction_id=None),
        line_for(transfer(77), 99),
    ]
    whole = {x.exception_id for x in exceptions(match(lines, transfers, CONFIG)[0])}
    parts, missing, unkeyed = set(), [], []
    for b in range(4):
        matcher = Matcher(CONFIG, final=False)
        mine = sorted(
            (x for x in lines if bucket_of(x.instruction_id, 4) == b), key=lambda x: x.instruction_id or ""
        )
        theirs = sorted(
            (t for t in transfers if bucket_of(t.instruction_id, 4) == b), key=lambda t: t.instruction_id
        )
        parts |= {x.exception_id for x in exceptions(matcher.run(mine, theirs))}
        missing += matcher.missing
        unkeyed += matcher.unkeyed
    parts |= {x.exception_id for x in exceptions(settle_leftovers(missing, unkeyed, CONFIG))}
    assert parts == whole and len(whole) == 8
