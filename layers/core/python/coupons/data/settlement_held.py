"""What a settlement run's claim left waiting on a risk hold (coupons.domain.risk.holds), for its
statements: per party the held postings (`HeldLine`, keyed by journal id) and per currency their exact
amount and count (`HeldTotal`), and a flag on the party's record (`held`) so that a statement reads them
only when there are some. A held posting is NOT claimed: it stays unsettled and due, and the run after
its release claims it.

  SETTLEMENT#{run_id}#HELD#{party} / L#{journal_id}   HeldLine
                                   / T#{currency}     HeldTotal
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError

from coupons.data.models.base import Transaction
from coupons.data.models.settlement import (
    HELD_KIND,
    HELD_LINE_PREFIX,
    HELD_TOTAL_KIND,
    HELD_TOTAL_PREFIX,
    RUN_SK,
    HeldLine,
    HeldTotal,
    SettlementParty,
    SettlementRun,
    held_line_sk,
    held_pk,
    held_total_sk,
    party_pk,
    run_pk,
)

# One transaction: the run's ConditionCheck, one Put per line, at most one total and one party flag
# per line: 1 + 3 × 32 = 97 ≤ 100 actions.
HELD_PER_TRANSACTION = 32
_HELD_FIELDS = (
    "account", "currency", "amount", "journal_id", "source_id", "source_kind", "redemption_id",
    "reversal_id", "business_date", "due_date", "review_hold", "held_because",
)  # fmt: skip
_CLAIMS_OPEN = "claims-open"


class HeldStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._runs = SettlementRun.bound(client, table_name)
        self._parties = SettlementParty.bound(client, table_name)
        self._lines = HeldLine.bound(client, table_name)
        self._totals = HeldTotal.bound(client, table_name)

    def hold_back(self, run_id: str, held: list[dict[str, Any]]) -> tuple[int, bool]:
        """Records held lines (each with `held_because`) for the run's statements, HELD_PER_TRANSACTION
        per transaction. Returns (recorded now, planned): a line recorded before (a retried or
        redelivered claim, an index that lags) is skipped and its totals are not added again; once the
        run is planned nothing more is recorded (its statements may be written already)."""
        recorded = 0
        pending = list(held)
        while pending:
            chunk, pending = pending[:HELD_PER_TRANSACTION], pending[HELD_PER_TRANSACTION:]
            while chunk:
                tx = self._transaction(run_id, chunk)
                try:
                    tx.commit()
                    recorded += len(chunk)
                    chunk = []
                except TransactWriteError as error:
                    if tx.failed(error, _CLAIMS_OPEN):
                        return recorded, True
                    refused = {i for i in range(len(chunk)) if tx.failed(error, i)}
                    if not refused:
                        raise  # a conflict or throttle: the claim step fails and is retried
                    chunk = [line for i, line in enumerate(chunk) if i not in refused]
        return recorded, False

    def _transaction(self, run_id: str, chunk: list[dict[str, Any]]) -> Transaction:
        tx = Transaction(self._client)
        # Like a claim: a line recorded once Plan listed the parties could miss a statement written
        # already, or name a party nobody plans.
        tx.condition_check(
            self._runs, run_pk(run_id), RUN_SK, self._runs.planned_at.does_not_exist(), tag=_CLAIMS_OPEN
        )
        totals: dict[tuple[str, str], list[int]] = {}
        for i, line in enumerate(chunk):
            item = self._lines.from_record(
                {k: line[k] for k in _HELD_FIELDS if line.get(k) is not None},
                pk=held_pk(run_id, line["account"]),
                sk=held_line_sk(line["journal_id"]),
                kind=HELD_KIND,
                run_id=run_id,
            )
            # Once per posting per run: the totals below are added only with a line written now.
            tx.save(item, self._lines.pk.does_not_exist(), tag=i)
            total = totals.setdefault((line["account"], line["currency"]), [0, 0])
            total[0] += int(line["amount"])
            total[1] += 1
        model = self._totals
        for (party, currency), (amount, count) in sorted(totals.items()):
            tx.update(
                model(held_pk(run_id, party), held_total_sk(currency)),
                [
                    model.kind.set(HELD_TOTAL_KIND),
                    model.run_id.set(run_id),
                    model.party.set(party),
                    model.currency.set(currency),
                    model.amount.add(amount),
                    model.count.add(count),
                ],  # no condition: created by its first line's transaction, added to by the others
            )
        parties = self._parties
        for party in sorted({party for party, _ in totals}):
            # The statement reads held items only for a party flagged here; never a stub party (the
            # claim step ensured its record first).
            tx.update(parties(party_pk(run_id, party), party), [parties.held.set(True)], parties.pk.exists())
        return tx

    def held(
        self, run_id: str, party: str, *, limit: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(the exact totals per currency, the first `limit` held lines in journal id order)."""
        pk = held_pk(run_id, party)
        totals = self._totals.query(pk, self._totals.sk.startswith(HELD_TOTAL_PREFIX), consistent_read=True)
        lines = self._lines.query(
            pk, self._lines.sk.startswith(HELD_LINE_PREFIX), consistent_read=True, limit=limit
        )
        return [t.record() for t in totals], [line.record() for line in lines]


__all__ = ["HELD_PER_TRANSACTION", "HeldStore"]
