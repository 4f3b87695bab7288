"""The acceptance property on the books: random settlement days with random injected differences,
compensated, then the next day's file (the resent instructions, the amounts owed again, the
recoveries) -> every party settled to zero, bank:{channel} equal to what the channel's files moved,
and settlement:{channel} / suspense:{channel} zero except for what waits for review."""

import io
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.reconciliation import channel_bill, formats
from coupons.domain.reconciliation.compensation import Action, Policy, after_query, decide
from coupons.domain.reconciliation.differences import Difference, inject, plan
from coupons.domain.reconciliation.internal import signed
from coupons.domain.reconciliation.lines import LineStatus, LineType
from coupons.domain.reconciliation.matcher import Confirmation, MatchConfig, match
from coupons.domain.reconciliation.records import ExceptionClass as C
from coupons.domain.reconciliation.records import TransferStatus
from tests.unit._reconciliation import CHANNEL, DAY, line_for, transfer

NEXT = "2026-11-25"
POLICY = Policy(fee_tolerance={"CNY": 200, "JPY": 2})


def through_the_file(lines, statement_date):
    out = io.StringIO()
    channel_bill.write(
        out, channel=CHANNEL, statement_date=statement_date, time_zone="Asia/Shanghai", lines=lines
    )
    raw = io.BytesIO(out.getvalue().encode())
    return list(formats.read_statement(raw, "coupons-bill", channel=CHANNEL, statement_date=statement_date))


def moved(lines, direction_of):
    """What the channel's lines moved, per currency (a payout +): SUCCESS lines only."""
    total = Counter()
    for line in lines:
        if line.status is not LineStatus.SUCCESS:
            continue
        if line.type is LineType.RETURN:
            total[line.currency] -= signed(direction_of[line.instruction_id], line.amount)
        else:
            total[line.currency] += signed(line.type, line.amount)
    return total


class Books(Counter):
    def post(self, legs, currency):
        for account, amount in legs:
            self[(account, currency)] += amount

    def instruct(self, t):
        self.post(
            [
                (t.party, -signed(t.direction, t.amount)),
                (f"settlement:{CHANNEL}", signed(t.direction, t.amount)),
            ],
            t.currency,
        )

    def account(self, name):
        return {cur: v for (acc, cur), v in self.items() if acc == name and v}


def reconcile(books, file, transfers, statement_date, direction_of):
    """Match, post the confirmations, decide and post every compensation; what the next run sends."""
    by_id = {t.instruction_id: t for t in transfers}
    out, _ = match(file, transfers, MatchConfig(CHANNEL, statement_date))
    sends, reviews = [], []
    for item in out:
        if isinstance(item, Confirmation):
            t = by_id[item.instruction_id]
            s = signed(t.direction, item.amount)
            books.post([(f"settlement:{CHANNEL}", -s), (f"bank:{CHANNEL}", s)], item.currency)
            continue
        comp = decide(item, POLICY, today=statement_date)
        if comp.action is Action.QUERY_CHANNEL:
            comp = after_query(item, None)  # the simulated bank never had it
        if comp.journal:
            books.post([(leg.account, leg.amount) for leg in comp.journal.legs], comp.journal.currency)
        if comp.action is Action.RESEND:
            sends.append(by_id[item.key].__class__(**{**by_id[item.key].evidence(), "date": NEXT}))
        elif comp.action is Action.RECOVER:
            r = comp.transfer
            sends.append(transfer(0, instruction_id=r["instruction_id"], party=r["party"], direction=r["direction"],
                                  amount=r["amount"], currency=r["currency"], date=NEXT, fee=0))  # fmt: skip
        elif comp.action is Action.RETURN_AND_REVERSE:
            t = by_id[item.ours["instruction_id"]]
            again = transfer(0, instruction_id=f"ins_20261125_{t.instruction_id[-20:]}", party=t.party,
                             direction=t.direction, amount=item.amount_at_stake, currency=t.currency, date=NEXT, fee=0)  # fmt: skip
            books.instruct(again)  # the next run's transfer of what is owed again
            sends.append(again)
        if comp.review:
            reviews.append((item, comp))
    for t in sends:
        direction_of[t.instruction_id] = t.direction
        if t.instruction_id.startswith("rcv_"):
            books.instruct(t)
    return sends, reviews


days = st.fixed_dictionaries(
    {
        "transfers": st.lists(
            st.tuples(st.sampled_from(["PAYOUT", "COLLECTION"]), st.integers(100, 10**8), st.sampled_from(["CNY", "JPY"]), st.integers(0, 500)),
            min_size=1, max_size=30,
        ),
        "seed": st.integers(0, 2**32),
        "counts": st.dictionaries(st.sampled_from(list(Difference)), st.integers(0, 2), max_size=9),
    }
)  # fmt: skip


@given(days)
def test_after_compensation_and_the_next_day_every_party_is_settled_and_only_review_items_hold_money(case):
    transfers = [
        transfer(n, direction=d, amount=a, currency=c, fee=f)
        for n, (d, a, c, f) in enumerate(case["transfers"], start=1)
    ]
    direction_of = {t.instruction_id: t.direction for t in transfers}
    books = Books()
    for t in transfers:  # what each party was owed before the run: its claimed postings
        books.post(
            [(t.party, signed(t.direction, t.amount)), ("clearing", -signed(t.direction, t.amount))],
            t.currency,
        )
        books.instruct(t)
    lines = [line_for(t, n) for n, t in enumerate(transfers, start=1)]
    counts, budget = dict(case["counts"]), len(lines)
    for kind in list(counts):
        if kind is not Difference.UNKNOWN:
            counts[kind] = min(counts[kind], budget)
            budget -= counts[kind]
    changed, _ = inject(lines, plan(lines, seed=case["seed"], counts=counts))
    file_one = through_the_file(changed, DAY)
    sends, reviews = reconcile(books, file_one, transfers, DAY, direction_of)

    # The next day: the bank shows what was sent again, owed again and recovered, and nothing else.
    file_two = through_the_file([line_for(t, n).with_(statement_date=NEXT, value_date=NEXT, channel_time=f"{NEXT}T09:00:00+08:00")
                                 for n, t in enumerate(sends, start=1)], NEXT)  # fmt: skip
    pending = [t.__class__(**{**t.evidence(), "status": TransferStatus.SENT}) for t in sends]
    more, later_reviews = reconcile(books, file_two, pending, NEXT, direction_of)
    assert more == [] and later_reviews == []

    waiting = Counter()
    for exc, _ in reviews:
        if exc.cls is C.CURRENCY_MISMATCH:  # our transfer still waits in settlement:{channel}
            waiting[exc.ours["currency"]] += signed(exc.ours["direction"], exc.ours["amount"])
    assert books.account(f"settlement:{CHANNEL}") == {c: v for c, v in waiting.items() if v}
    channel_moved = moved(file_one, direction_of)
    channel_moved.update(moved(file_two, direction_of))  # update, not +: a Counter sum drops negatives
    assert books.account(f"bank:{CHANNEL}") == {c: v for c, v in channel_moved.items() if v}
    if not any(
        comp.journal and any(leg.account.startswith("suspense:") for leg in comp.journal.legs)
        for _, comp in reviews
    ):
        assert books.account(f"suspense:{CHANNEL}") == {}
    parties = {t.party for t in transfers}
    assert {(acc, cur): v for (acc, cur), v in books.items() if acc in parties and v} == {}
    for currency in {cur for _, cur in books}:
        assert sum(v for (_, cur), v in books.items() if cur == currency) == 0
