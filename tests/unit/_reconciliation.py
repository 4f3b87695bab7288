"""Shared builders for the reconciliation unit tests: our transfers of a day and the channel's
lines that match them exactly."""

from coupons.domain.reconciliation.lines import LineStatus, LineType, StatementLine
from coupons.domain.reconciliation.matcher import MatchConfig
from coupons.domain.reconciliation.records import Transfer, TransferStatus

CHANNEL = "simulated"
DAY = "2026-11-24"
CONFIG = MatchConfig(channel=CHANNEL, statement_date=DAY, time_zone="Asia/Shanghai", drift_days=1, cutoff_window_s=900)


def transfer(n: int, **changes) -> Transfer:
    fields = dict(
        instruction_id=f"ins_20261124_{n:020d}", party=f"merchant:m{n}", direction="PAYOUT", amount=10_000 + n,
        fee=60, currency="CNY", status=TransferStatus.SENT, date=DAY, sent_at="2026-11-24T02:00:00.000000Z",
        run_id="stl_20261124",
    )  # fmt: skip
    fields.update(changes)
    return Transfer(**fields)


def line_for(t: Transfer, n: int = 0, **changes) -> StatementLine:
    base = StatementLine(
        channel=CHANNEL, statement_date=DAY, value_date=t.date if t.date <= DAY else DAY,
        channel_time=f"{t.date}T10:00:00+08:00", channel_reference="SIMBANK-" + t.instruction_id[-8:],
        instruction_id=t.instruction_id, type=LineType(str(t.direction)), status=LineStatus.SUCCESS,
        amount=t.amount, fee=t.fee, currency=t.currency, line_no=n,
    )  # fmt: skip
    return base.with_(**changes)


def day(count: int, **changes):
    transfers = [transfer(n, **changes) for n in range(1, count + 1)]
    return transfers, [line_for(t, n) for n, t in enumerate(transfers, start=1)]
