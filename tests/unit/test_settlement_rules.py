"""Settlement's pure rules: netting into payouts, collections and carried amounts that add up to the
lines to the unit; derived ids; which settlement date and kind a run settles; statements that add up."""

import csv
import io
from collections import defaultdict
from dataclasses import asdict
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.errors import InvalidField
from coupons.domain.payments import Direction
from coupons.domain.settlement import (
    STATEMENT_COLUMNS,
    Decision,
    SettlementRunNotFound,
    business_date_of,
    carry_id,
    decide,
    execution_name,
    instruction_id,
    kind_of,
    net_party,
    parse_kind,
    run_id,
    scheduled_date,
    statement,
    statement_csv,
    validate_settlement_date,
)
from coupons.domain.timeline import RunKind

TODAY = date(2026, 3, 10)
RUN = run_id("2026-03-09")


# -- decide ----------------------------------------------------------------------------------------


def test_a_positive_net_at_or_above_the_minimum_is_paid_out_in_full():
    outcome = decide("CNY", 12_345, 3, minimum=100)
    assert (outcome.decision, outcome.transfer, outcome.carried) == (Decision.PAYOUT, 12_345, 0)
    assert outcome.direction is Direction.PAYOUT
    assert (outcome.net, outcome.lines, outcome.currency) == (12_345, 3, "CNY")


def test_a_negative_net_at_or_above_the_minimum_is_collected_as_a_positive_transfer():
    outcome = decide("CNY", -12_345, 2, minimum=100)
    assert (outcome.decision, outcome.transfer, outcome.carried) == (Decision.COLLECTION, 12_345, 0)
    assert outcome.direction is Direction.COLLECTION
    assert outcome.net == -12_345


def test_a_zero_net_moves_nothing_and_carries_nothing():
    outcome = decide("CNY", 0, 4, minimum=100)
    assert (outcome.decision, outcome.transfer, outcome.carried) == (Decision.NONE, 0, 0)
    assert outcome.direction is None and outcome.lines == 4


@pytest.mark.parametrize("net", [1, 99, -1, -99], ids=["+1", "+99", "-1", "-99"])
def test_a_net_below_the_minimum_of_either_sign_is_carried_forward_signed_like_the_net(net):
    outcome = decide("CNY", net, 1, minimum=100)
    assert (outcome.decision, outcome.transfer, outcome.carried) == (Decision.CARRY_FORWARD, 0, net)
    assert outcome.direction is None


@pytest.mark.parametrize(
    ("net", "decision"), [(100, Decision.PAYOUT), (-100, Decision.COLLECTION)], ids=["payout", "collection"]
)
def test_a_net_of_exactly_the_minimum_is_transferred_not_carried(net, decision):
    outcome = decide("CNY", net, 1, minimum=100)
    assert (outcome.decision, outcome.transfer, outcome.carried) == (decision, 100, 0)


def test_without_a_minimum_every_nonzero_net_is_transferred():
    assert decide("JPY", 1, 1, minimum=0).decision is Decision.PAYOUT
    assert decide("JPY", -1, 1, minimum=0).decision is Decision.COLLECTION


def test_net_party_gives_one_outcome_per_currency_sorted_and_counts_the_lines():
    lines = [
        {"currency": "USD", "amount": 500},
        {"currency": "CNY", "amount": 300},
        {"currency": "CNY", "amount": -250},
        {"currency": "USD", "amount": -20},
    ]
    outcomes = net_party(lines, {"CNY": 100})
    assert [(o.currency, o.net, o.lines, o.decision) for o in outcomes] == [
        ("CNY", 50, 2, Decision.CARRY_FORWARD),
        ("USD", 480, 2, Decision.PAYOUT),  # no minimum for USD: 0
    ]


# -- derived ids -----------------------------------------------------------------------------------


def test_an_instruction_id_is_the_same_on_every_retry():
    assert instruction_id(RUN, "merchant:m1", "CNY") == instruction_id(RUN, "merchant:m1", "CNY")
    assert instruction_id(RUN, "merchant:m1", "CNY").startswith("ins_20260309_")


def test_instruction_ids_differ_per_party_currency_and_run():
    ids = {
        instruction_id(run, party, currency)
        for run in (RUN, run_id("2026-03-10"))
        for party in ("merchant:m1", "merchant:m2", "brand:b1", "platform")
        for currency in ("CNY", "USD")
    }
    assert len(ids) == 2 * 4 * 2


def test_a_carry_id_is_derived_and_never_equals_the_instruction_id():
    assert carry_id(RUN, "merchant:m1", "CNY") == carry_id(RUN, "merchant:m1", "CNY")
    assert carry_id(RUN, "merchant:m1", "CNY") != carry_id(RUN, "merchant:m2", "CNY")
    assert carry_id(RUN, "merchant:m1", "CNY") != instruction_id(RUN, "merchant:m1", "CNY")


# -- which settlement date, which run ---------------------------------------------------------------


def test_a_settlement_date_is_accepted_as_it_was_written_whatever_the_day():
    # Whether its run may start is the cut-off's to say (coupons.domain.timeline.check_passed).
    assert validate_settlement_date("2026-03-09") == "2026-03-09"
    assert validate_settlement_date("2027-01-01") == "2027-01-01"


@pytest.mark.parametrize(
    "text",
    ["2026-2-1", "", "2026-13-01", "2026-02-30", "20260301", "2026-W10-1"],
    ids=["unpadded", "empty", "month-13", "feb-30", "basic-format", "iso-week"],
)
def test_a_malformed_settlement_date_is_refused_naming_settlement_date(text):
    with pytest.raises(InvalidField) as refused:
        validate_settlement_date(text)
    assert refused.value.field == "settlement_date"


def test_a_date_has_a_daily_and_an_intraday_run_with_ids_and_execution_names_of_their_own():
    assert run_id("2026-03-09") == run_id("2026-03-09", RunKind.DAILY) == "stl_20260309"
    assert run_id("2026-03-09", "INTRADAY") == "stl_20260309_t0"
    assert business_date_of("stl_20260309_t0") == business_date_of("stl_20260309") == "2026-03-09"
    assert (kind_of("stl_20260309"), kind_of("stl_20260309_t0")) == (RunKind.DAILY, RunKind.INTRADAY)
    assert execution_name("acme", "2026-03-09", 2) == "settle-acme-2026-03-09-2"
    assert execution_name("acme", "2026-03-09", 2, RunKind.INTRADAY) == "settle-acme-2026-03-09-t0-2"
    assert instruction_id(run_id("2026-03-09"), "platform", "EUR") != instruction_id(
        run_id("2026-03-09", "INTRADAY"), "platform", "EUR"
    )


@pytest.mark.parametrize("text", ["stl_2026030", "stl_20260309_t1", "stl_20260309_t0x", "rcn_20260309"])
def test_anything_else_is_not_a_run_id(text):
    with pytest.raises(SettlementRunNotFound):
        business_date_of(text)


@pytest.mark.parametrize(("text", "kind"), [("daily", RunKind.DAILY), ("INTRADAY", RunKind.INTRADAY)])
def test_a_kind_is_daily_or_intraday_in_any_case(text, kind):
    assert parse_kind(text) is kind


def test_another_kind_is_refused_naming_kind():
    with pytest.raises(InvalidField) as refused:
        parse_kind("weekly")
    assert refused.value.field == "kind"


@pytest.mark.parametrize(
    ("fired_at", "settles"),
    [
        # Autumn: 03:00 CEST becomes 02:00 CET on 2026-10-25 (UTC+2 → UTC+1).
        ("2026-10-24T22:30:00Z", "2026-10-25"),  # 00:30 CEST on the 25th
        ("2026-10-25T01:00:00Z", "2026-10-25"),  # 02:00 CET on the 25th (after the clocks went back)
        ("2026-10-25T22:30:00Z", "2026-10-25"),  # 23:30 CET on the 25th
        # Spring: 02:00 CET becomes 03:00 CEST on 2026-03-29 (UTC+1 → UTC+2).
        ("2026-03-28T22:59:59Z", "2026-03-28"),  # 23:59:59 CET on the 28th
        ("2026-03-28T23:00:00Z", "2026-03-29"),  # 00:00 CET on the 29th
        ("2026-03-29T22:30:00Z", "2026-03-30"),  # 00:30 CEST on the 30th
    ],
)
def test_a_schedule_in_berlin_settles_the_local_day_it_fires_on_across_a_dst_change(fired_at, settles):
    assert scheduled_date(fired_at, "Europe/Berlin") == settles


def test_the_same_instant_is_another_day_in_another_zone():
    # 18:30 UTC on the 25th is 02:30 on the 26th in Shanghai, still the 25th in New York.
    assert scheduled_date("2026-11-25T18:30:00Z", "Asia/Shanghai") == "2026-11-26"
    assert scheduled_date("2026-11-25T18:30:00Z", "America/New_York") == "2026-11-25"
    assert scheduled_date("2026-11-26T02:30:00+08:00", "Asia/Shanghai") == "2026-11-26"


# -- statements ------------------------------------------------------------------------------------

LINES = [
    {
        "journal_id": "jnl_rdm_2",
        "currency": "CNY",
        "amount": 700,
        "business_date": "2026-03-09",
        "source_kind": "REDEMPTION",
        "redemption_id": "rdm_2",
        "merchant_id": "m1",
    },
    {
        "journal_id": "jnl_rdm_1",
        "currency": "CNY",
        "amount": 500,
        "business_date": "2026-03-08",
        "source_kind": "REDEMPTION",
        "redemption_id": "rdm_1",
        "merchant_id": "m1",
    },
    {
        "journal_id": "jnl_rvs_1",
        "currency": "CNY",
        "amount": -200,
        "business_date": "2026-03-09",
        "source_kind": "REVERSAL",
        "reversal_id": "rvs_1",
        "redemption_id": "rdm_1",
        "merchant_id": "m1",
    },
    {
        "journal_id": "jnl_rdm_3",
        "currency": "USD",
        "amount": 40,
        "business_date": "2026-03-09",
        "source_kind": "REDEMPTION",
        "redemption_id": "rdm_3",
        "merchant_id": "m1",
        "posting_pk": "x",
    },
]


def statement_of(lines, minimums):
    """merchant:m1's statement over `lines`, netted as the pay step nets them and paid where due."""
    record = {
        "currencies": {
            o.currency: {
                **asdict(o),
                "decision": o.decision.value,
                "channel_reference": "SIMBANK-1" if o.transfer else None,
            }
            for o in net_party(lines, minimums)
        }
    }
    return statement({"run_id": RUN, "business_date": "2026-03-09"}, "merchant:m1", lines, record)


def test_a_statements_totals_equal_the_net_of_its_lines_per_currency():
    document = statement_of(LINES, {"USD": 100})
    totals = {t["currency"]: t for t in document["totals"]}
    assert (
        totals["CNY"]["net"] == 1000 == sum(x["amount"] for x in document["lines"] if x["currency"] == "CNY")
    )
    assert (totals["CNY"]["decision"], totals["CNY"]["transfer"]) == ("PAYOUT", 1000)
    assert (totals["USD"]["decision"], totals["USD"]["carried_forward"]) == ("CARRY_FORWARD", 40)
    assert totals["USD"]["transfer"] + totals["USD"]["carried_forward"] == 40


def test_a_statement_lists_lines_by_currency_then_date_and_keeps_only_statement_columns():
    document = statement_of(LINES, {})
    assert [x["journal_id"] for x in document["lines"]] == [
        "jnl_rdm_1",
        "jnl_rdm_2",
        "jnl_rvs_1",
        "jnl_rdm_3",
    ]
    assert all(set(x) <= set(STATEMENT_COLUMNS) for x in document["lines"])  # no posting_pk


def test_a_csv_statement_has_one_row_per_line_and_a_total_row_per_currency_carrying_the_net():
    document = statement_of(LINES, {"USD": 100})
    rows = list(csv.DictReader(io.StringIO(statement_csv(document))))
    lines = [r for r in rows if r["source_kind"] != "TOTAL"]
    totals = {r["currency"]: r for r in rows if r["source_kind"] == "TOTAL"}
    assert len(lines) == len(LINES) and set(totals) == {"CNY", "USD"}
    assert all(r["run_id"] == RUN and r["party"] == "merchant:m1" for r in rows)
    for currency, total in totals.items():
        assert int(total["amount"]) == sum(int(r["amount"]) for r in lines if r["currency"] == currency)
    assert (totals["CNY"]["decision"], totals["CNY"]["transfer"], totals["CNY"]["channel_reference"]) == (
        "PAYOUT",
        "1000",
        "SIMBANK-1",
    )
    assert (
        totals["USD"]["decision"],
        totals["USD"]["carried_forward"],
        totals["USD"]["channel_reference"],
    ) == (
        "CARRY_FORWARD",
        "40",
        "",
    )


# -- the property: nothing is created or lost by netting ----------------------------------------

CURRENCIES = ("CNY", "USD", "JPY")
PARTIES = ("platform", "brand:b1", "brand:b2", "merchant:m1", "merchant:m2", "merchant:m3")


@st.composite
def postings(draw):
    """Lines of random parties in 1-3 currencies: redemptions due T+0..T+7 and reversal-like negative
    lines, so some parties net negative, some to zero, some just below a minimum."""
    currencies = draw(st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=3, unique=True))
    amount = st.one_of(st.integers(-(10**9), 10**9), st.integers(-300, 300), st.just(0))
    lines = []
    for i in range(draw(st.integers(1, 40))):
        business = date(2026, 3, 1) + timedelta(days=draw(st.integers(0, 8)))
        value = draw(amount)
        kind = draw(st.sampled_from(["REDEMPTION", "REVERSAL"]))
        lines.append(
            {
                "account": draw(st.sampled_from(PARTIES)),
                "currency": draw(st.sampled_from(currencies)),
                "amount": -abs(value) if kind == "REVERSAL" else value,
                "journal_id": f"jnl_{i}",
                "source_kind": kind,
                "business_date": business.isoformat(),
                "due_date": (business + timedelta(days=draw(st.integers(0, 7)))).isoformat(),
            }
        )
    minimums = draw(
        st.dictionaries(st.sampled_from(currencies), st.one_of(st.integers(0, 1000), st.integers(0, 10**9)))
    )
    return lines, minimums


@given(postings())
def test_per_currency_payouts_minus_collections_plus_carried_equal_the_lines_to_the_unit(case):
    lines, minimums = case
    by_party = defaultdict(list)
    for line in lines:
        by_party[line["account"]].append(line)

    moved = defaultdict(int)
    for party_lines in by_party.values():
        for o in net_party(party_lines, minimums):
            minimum = minimums.get(o.currency, 0)
            moved[o.currency] += {Decision.PAYOUT: o.transfer, Decision.COLLECTION: -o.transfer}.get(
                o.decision, 0
            )
            moved[o.currency] += o.carried
            assert o.net == sum(x["amount"] for x in party_lines if x["currency"] == o.currency)
            if o.transfer:
                assert o.transfer >= minimum and o.transfer == abs(o.net) and o.carried == 0
            if o.carried:
                assert 0 < abs(o.net) < minimum and o.decision is Decision.CARRY_FORWARD and o.transfer == 0
            if o.net == 0:
                assert (o.decision, o.transfer, o.carried) == (Decision.NONE, 0, 0)

    expected = defaultdict(int)
    for line in lines:
        expected[line["currency"]] += line["amount"]
    assert dict(moved) == dict(expected)


def test_a_statements_held_section_keeps_exact_totals_beyond_the_lines_it_lists_and_is_in_no_total():
    listed = [
        {"journal_id": f"jnl_rdm_{i}", "currency": "CNY", "amount": 10, "source_kind": "REDEMPTION",
         "held_because": {"hold_id": "hold_1", "reason": "chargebacks"}}
        for i in range(3)
    ]  # fmt: skip
    held = ([{"currency": "CNY", "amount": 1000, "count": 100}], listed)
    document = statement({"run_id": RUN, "business_date": "2026-03-09"}, "merchant:m9", [], {}, held=held)
    assert [(t["currency"], t["net"], t["transfer"], t["decision"]) for t in document["totals"]] == [
        ("CNY", 0, 0, "NONE")
    ]
    [section] = document["held"]
    assert (section["amount"], section["count"], len(section["lines"]), section["unlisted"]) == (1000, 100, 3, 97)
    rows = list(csv.DictReader(io.StringIO(statement_csv(document))))
    assert [r["held_because"] for r in rows if r["decision"] == "HELD"] == [
        "hold_1: chargebacks", "hold_1: chargebacks", "hold_1: chargebacks", "100 lines"
    ]  # fmt: skip
    assert [r["amount"] for r in rows if r["source_kind"] == "HELD_TOTAL"] == ["1000"]
    assert "held" not in statement({"run_id": RUN, "business_date": "2026-03-09"}, "merchant:m9", [], {})
