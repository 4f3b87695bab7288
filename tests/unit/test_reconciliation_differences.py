"""The simulated bank's differences, and the acceptance property: random settlement days with random
injected differences, written as the bank's file and parsed back -> every difference classified
exactly once, under the class its injection names, with ids that a replay gives again."""

import io
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.reconciliation import channel_bill, formats, simbank
from coupons.domain.reconciliation.compensation import Policy, decide
from coupons.domain.reconciliation.differences import (
    EXPECTED,
    Difference,
    Injection,
    inject,
    parse_spec,
    plan,
)
from coupons.domain.reconciliation.matcher import MatchConfig, Matcher, match
from coupons.domain.reconciliation.records import ReconException
from tests.unit._reconciliation import CONFIG, DAY, day


def classified(lines, transfers, config=CONFIG):
    return [x for x in match(lines, transfers, config)[0] if isinstance(x, ReconException)]


@pytest.mark.parametrize("kind", list(Difference))
def test_each_injected_difference_becomes_exactly_the_exception_it_names(kind):
    transfers, lines = day(4)
    target = None if kind is Difference.UNKNOWN else lines[2].instruction_id
    changed, (injected,) = inject(lines, [Injection(kind, target, delta=25)])
    (exc,) = classified(changed, transfers)
    assert (exc.cls, exc.key) == (EXPECTED[kind], injected.key)


def test_injection_is_pure_and_leaves_the_other_lines_as_they_were():
    transfers, lines = day(5)
    before = list(lines)
    changed, _ = inject(lines, [Injection(Difference.MISSING, lines[0].instruction_id)])
    assert lines == before and changed == lines[1:]


def test_one_difference_per_instruction_id():
    _, lines = day(2)
    with pytest.raises(ValueError, match="one difference"):
        inject(
            lines,
            [
                Injection(Difference.FEE, lines[0].instruction_id),
                Injection(Difference.AMOUNT, lines[0].instruction_id),
            ],
        )


def test_a_plan_is_the_same_for_the_same_seed_and_targets_distinct_lines():
    _, lines = day(30)
    counts = parse_spec("missing=2,returned=1,fee=3,previous_day=1,unknown=2")
    assert counts == {
        Difference.MISSING: 2,
        Difference.RETURNED: 1,
        Difference.FEE: 3,
        Difference.PREVIOUS_DAY: 1,
        Difference.UNKNOWN: 2,
    }
    first, again = plan(lines, seed=7, counts=counts), plan(lines, seed=7, counts=counts)
    assert first == again and plan(lines, seed=8, counts=counts) != first
    targets = [i.instruction_id for i in first if i.instruction_id]
    assert len(targets) == len(set(targets)) == 7


def test_a_spec_with_an_unknown_kind_is_refused_naming_the_kinds():
    with pytest.raises(ValueError, match="previous_day"):
        parse_spec("missing=1,late=2")


def test_the_simulated_bank_s_records_of_the_day_become_its_lines_in_instruction_id_order():
    records = [
        {"instruction_id": "ins_b", "direction": "PAYOUT", "amount": 500, "currency": "CNY", "channel_reference": "SIMBANK-B", "accepted_at": "2026-11-24T01:00:00.000000Z"},
        {"instruction_id": "ins_a", "direction": "COLLECTION", "amount": 700, "currency": "CNY", "channel_reference": "SIMBANK-A", "accepted_at": "2026-11-23T16:30:00.000000Z"},
        {"instruction_id": "ins_c", "direction": "PAYOUT", "amount": 900, "currency": "CNY", "channel_reference": "SIMBANK-C", "accepted_at": "2026-11-24T16:30:00.000000Z"},
    ]  # fmt: skip
    lines = simbank.statement_lines(
        records,
        channel="simulated",
        statement_date=DAY,
        time_zone="Asia/Shanghai",
        fee_of=lambda r: r["amount"] // 100,
    )
    assert [(x.instruction_id, str(x.type), x.amount, x.fee, x.channel_time) for x in lines] == [
        ("ins_a", "COLLECTION", 700, 7, "2026-11-24T00:30:00+08:00"),
        ("ins_b", "PAYOUT", 500, 5, "2026-11-24T09:00:00+08:00"),
    ]


def _through_the_file(lines):
    out = io.StringIO()
    channel_bill.write(out, channel="simulated", statement_date=DAY, time_zone="Asia/Shanghai", lines=lines)
    raw = io.BytesIO(out.getvalue().encode())
    return list(formats.read_statement(raw, "coupons-bill", channel="simulated", statement_date=DAY))


days = st.fixed_dictionaries(
    {
        "transfers": st.lists(
            st.tuples(st.sampled_from(["PAYOUT", "COLLECTION"]), st.integers(1, 10**9), st.sampled_from(["CNY", "JPY", "KWD"]), st.integers(0, 5000)),
            min_size=1, max_size=40,
        ),
        "seed": st.integers(0, 2**32),
        "counts": st.dictionaries(st.sampled_from(list(Difference)), st.integers(0, 3), max_size=9),
    }
)  # fmt: skip


@given(days)
def test_every_injected_difference_of_a_random_day_is_classified_exactly_once_and_replays_give_the_same_ids(
    case,
):
    transfers, lines = day(len(case["transfers"]))
    transfers = [
        t.__class__(**{**t.evidence(), "direction": d, "amount": a, "currency": c, "fee": f})
        for t, (d, a, c, f) in zip(transfers, case["transfers"], strict=True)
    ]
    from tests.unit._reconciliation import line_for

    lines = [line_for(t, n) for n, t in enumerate(transfers, start=1)]
    counts = dict(case["counts"])
    budget = len(lines)
    for kind in list(counts):  # at most one difference per transfer
        if kind is not Difference.UNKNOWN:
            counts[kind] = min(counts[kind], budget)
            budget -= counts[kind]
    injections = plan(lines, seed=case["seed"], counts=counts)
    changed, injected = inject(lines, injections)
    parsed = _through_the_file(changed)

    found = classified(parsed, transfers)
    assert Counter((x.cls, x.key) for x in found) == Counter((i.expected, i.key) for i in injected)
    assert len({x.exception_id for x in found}) == len(found)

    replay = classified(_through_the_file(changed), transfers)
    assert [x.exception_id for x in replay] == [x.exception_id for x in found]
    policy = Policy(fee_tolerance={"CNY": 250, "JPY": 3, "KWD": 2500})
    assert [decide(x, policy, today=DAY) for x in replay] == [decide(x, policy, today=DAY) for x in found]


def test_a_day_sorted_by_instruction_id_streams_through_the_matcher_without_sorting():
    transfers, lines = day(200)
    changed, injected = inject(
        lines, plan(lines, seed=3, counts={Difference.MISSING: 3, Difference.DUPLICATE: 2, Difference.FEE: 4})
    )
    matcher = Matcher(MatchConfig("simulated", DAY))
    found = [
        x
        for x in matcher.run(iter(_through_the_file(changed)), iter(transfers))
        if isinstance(x, ReconException)
    ]
    assert Counter((x.cls, x.key) for x in found) == Counter((i.expected, i.key) for i in injected)
    assert matcher.report.confirmed == 200 - 3


def test_cutoff_is_the_operators_name_for_a_line_dated_the_day_before():
    from coupons.domain.reconciliation.differences import Difference, parse_spec

    assert parse_spec("missing=1,returned=1,fee=1,cutoff=1") == {
        Difference.MISSING: 1, Difference.RETURNED: 1, Difference.FEE: 1, Difference.PREVIOUS_DAY: 1}  # fmt: skip
