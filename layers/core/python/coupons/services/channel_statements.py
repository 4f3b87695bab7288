"""The simulated bank's daily statement file: its lines of the day (`PaymentChannel.statement`),
the differences a test or `make bank-statement INJECT=...` asks for (domain.reconciliation.differences),
written as `coupons-bill/1`, gzipped, into channel-statements/{channel}/{date}.csv.gz."""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass

from coupons.data.channel_statements import ChannelStatementStore
from coupons.domain.payments import PaymentChannel
from coupons.domain.reconciliation import channel_bill, differences


@dataclass(frozen=True)
class Published:
    key: str
    version_id: str
    lines: int
    injected: list[differences.Injected]


def publish_statement(
    channel: PaymentChannel,
    store: ChannelStatementStore,
    *,
    channel_name: str,
    statement_date: str,
    time_zone: str,
    inject: str | list[differences.Injection] = "",
    seed: int = 0,
) -> Published:
    """`inject`: a spec (`missing=1,returned=1,fee=1,cutoff=1`: lines chosen by `seed`) or the exact
    injections. Each injected difference comes back with the exception it must become."""
    lines = channel.statement(statement_date, time_zone=time_zone, channel=channel_name)
    if isinstance(inject, str):
        counts = differences.parse_spec(inject)
        injections = differences.plan(lines, seed=seed, counts=counts) if counts else []
    else:
        injections = inject
    changed, injected = differences.inject(lines, injections)
    text = io.StringIO()
    count = channel_bill.write(
        text, channel=channel_name, statement_date=statement_date, time_zone=time_zone, lines=changed
    )
    # mtime=0: the same day's statement is the same bytes (a test or a replay compares them).
    body = gzip.compress(text.getvalue().encode(), mtime=0)
    where = store.put(channel_name, statement_date, body)
    return Published(where["key"], where["version_id"], count, injected)
