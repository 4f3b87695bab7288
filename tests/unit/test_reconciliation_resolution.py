"""The journals of finance's resolutions, pure (coupons.domain.reconciliation.resolution)."""

from coupons.domain.reconciliation.resolution import resolution_journal, resolution_journal_id


def exc(cls, **kw):
    return {
        "exception_id": "rex_1",
        "cls": cls,
        "channel": "sim",
        "currency": "CNY",
        "ours": {},
        "facts": {},
        **kw,
    }


FEE_REVIEW = [{"account": "fees:sim", "amount": 300}, {"account": "suspense:sim", "amount": -300}]


def legs(journal):
    return {leg.account: leg.amount for leg in journal.legs}


def test_accepting_a_fee_empties_suspense_to_the_fee_bearer():
    journal = resolution_journal(
        exc("FEE_MISMATCH"), FEE_REVIEW, "ACCEPT_CHANNEL", account=None, fee_bearer="platform"
    )
    assert legs(journal) == {"suspense:sim": 300, "platform": -300}


def test_a_write_off_empties_suspense_into_the_named_account():
    journal = resolution_journal(exc("FEE_MISMATCH"), FEE_REVIEW, "WRITE_OFF", account="expense:fees")
    assert legs(journal) == {"suspense:sim": 300, "expense:fees": -300}


def test_a_write_off_of_a_missing_transfer_takes_it_out_of_settlement():
    missing = exc("MISSING_AT_CHANNEL", ours={"amount": 500, "direction": "PAYOUT", "party": "merchant:m"})
    assert legs(resolution_journal(missing, None, "WRITE_OFF", account="loss:sim")) == {
        "settlement:sim": -500,
        "loss:sim": 500,
    }


def test_accepting_an_amount_difference_leaves_the_party_owed_what_it_did_not_get():
    review = [{"account": "settlement:sim", "amount": -1300}, {"account": "bank:sim", "amount": 1260},
              {"account": "suspense:sim", "amount": 40}]  # fmt: skip
    amount = exc("AMOUNT_MISMATCH", ours={"amount": 1300, "direction": "PAYOUT", "party": "merchant:m"})
    assert legs(resolution_journal(amount, review, "ACCEPT_CHANNEL", account=None)) == {
        "suspense:sim": -40,
        "merchant:m": 40,
    }


def test_reverse_undoes_the_compensation_leg_by_leg_and_resend_books_nothing():
    journal = resolution_journal(exc("FEE_MISMATCH"), FEE_REVIEW, "REVERSE", account=None)
    assert legs(journal) == {"fees:sim": -300, "suspense:sim": 300}
    assert resolution_journal(exc("MISSING_AT_CHANNEL"), None, "RESEND", account=None) is None
    assert resolution_journal(exc("INTERNAL_MISMATCH"), None, "ACCEPT_CHANNEL", account=None) is None


def test_ids_derive_from_the_exception_the_action_and_how_many_resolutions_came_before():
    first = resolution_journal(exc("FEE_MISMATCH"), FEE_REVIEW, "REVERSE", account=None)
    assert first.journal_id == resolution_journal_id("rex_1", "REVERSE", 0)
    again = resolution_journal(exc("FEE_MISMATCH"), FEE_REVIEW, "REVERSE", account=None, sequence=1)
    assert again.journal_id != first.journal_id


def test_a_sent_transfer_whose_journal_is_missing_or_settled_another_net_is_an_internal_mismatch():
    from coupons.domain.reconciliation.internal import internal_differences
    from coupons.domain.reconciliation.records import PartyRecord, Transfer

    transfer = Transfer("ins_1", "merchant:m", "PAYOUT", 500, 0, "CNY", "SENT", "2026-03-10")
    record = PartyRecord(
        "ins_1", "merchant:m", "CNY", "PAYOUT", 500, 500, 500, journal_settled=None, journal_expected=True
    )
    [missing] = internal_differences("ins_1", transfer, record, "sim", "2026-03-10")
    assert "its journal is not in the ledger" in missing.detail
    other = PartyRecord(
        "ins_1", "merchant:m", "CNY", "PAYOUT", 500, 500, 500, journal_settled=450, journal_expected=True
    )
    [differs] = internal_differences("ins_1", transfer, other, "sim", "2026-03-10")
    assert differs.amount_at_stake == 50
    fine = PartyRecord(
        "ins_1", "merchant:m", "CNY", "PAYOUT", 500, 500, 500, journal_settled=500, journal_expected=True
    )
    assert list(internal_differences("ins_1", transfer, fine, "sim", "2026-03-10")) == []
