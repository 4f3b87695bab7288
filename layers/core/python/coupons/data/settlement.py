"""Settlement runs in the main table: the run, its parties, the lines each party is settled on.

  SETTLEMENT#{run_id}                  / RUN               status, attempt, execution, totals
                                                             gsi1: SETTLEMENTRUNS / {business_date}
  SETTLEMENT#{run_id}#PARTIES#{bucket} / {party}           per currency: net, decision, transfer,
                                                             instruction id, channel reference
  SETTLEMENT#{run_id}#LINES#{party}    / {journal_id}      a copy of each posting the run claimed
  CARRY#{party}                        / {run_id}#{CUR}    an amount carried into the next run

(the models: coupons.data.models.settlement)

A posting is claimed by updating it under `attribute_not_exists(run_id)` (so it belongs to at most
one run) and removing its unsettled-index keys, in the same transaction that writes its line: a line
exists exactly when its posting is claimed by that run, so a resumed run reads what it claimed from
its lines (strongly consistent) rather than from an index. Claims close when the run is planned
(`planned_at` on the run): every claim transaction, and the Put of a party record, carries a
ConditionCheck on it, so nothing is claimed for a run whose parties are listed and netted already.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.pagination import PageIterator

from coupons.data.ledger import UNSETTLED, LedgerStore, unsettled_partition
from coupons.data.models.base import Transaction, failed_condition, plain_image
from coupons.data.models.settlement import (
    CARRY_KIND,
    LINE_KIND,
    PARTY_KIND,
    RUN_KIND,
    RUN_SK,
    RUNS_INDEX_PK,
    CarryItem,
    PostingClaim,
    SettlementLine,
    SettlementParty,
    SettlementRun,
    carry_pk,
    carry_sk,
    lines_pk,
    parties_pk,
    party_pk,
    run_pk,
)
from coupons.data.settlement_held import HeldStore
from coupons.domain.ledger import Journal as JournalTerms
from coupons.domain.settlement import PARTY_BUCKETS, STATEMENT_COLUMNS

# TransactWriteItems takes at most 100 actions: the run's ConditionCheck, then 2 per claim (posting
# update + line put).
CLAIMS_PER_TRANSACTION = 49
SETTLES_PER_TRANSACTION = 100
# What a run's line copies from its posting: what a statement shows, and whose line it is.
_LINE_FIELDS = (*STATEMENT_COLUMNS, "account", "source_id", "brand_id", "carried_from")
_CLAIMS_OPEN, _PARTY, _TRANSFER = "claims-open", "party", "transfer"


class RunPlanned(Exception):
    """The run's parties are planned: it claims nothing more (what is left waits for the next run)."""


class RunExists(Exception):
    def __init__(self, run: dict[str, Any]):
        super().__init__(run.get("run_id"))
        self.run = run


class SettlementStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._runs = SettlementRun.bound(client, table_name)
        self._parties = SettlementParty.bound(client, table_name)
        self._lines = SettlementLine.bound(client, table_name)
        self._carries = CarryItem.bound(client, table_name)
        self._postings = PostingClaim.bound(client, table_name)
        self._ledger = LedgerStore(client, table_name)  # a transfer's journal, in the move's transaction
        self.held = HeldStore(client, table_name)  # what a claim left waiting on a hold (its statements')

    # -- the run -----------------------------------------------------------------------------

    def create_run(self, record: dict[str, Any]) -> dict[str, Any]:
        """Creates the run; RunExists (with the stored run) if the date has one: one run per date."""
        model = self._runs
        run = model.from_record(
            record,
            pk=run_pk(record["run_id"]),
            sk=RUN_SK,
            kind=RUN_KIND,
            gsi1pk=RUNS_INDEX_PK,
            gsi1sk=record["business_date"],
        )
        # PynamoDB builds the request; the low-level client sends it, because PynamoDB's save cannot ask
        # for the run that stood in the way (ReturnValuesOnConditionCheckFailure): the loser of a race
        # for the date gets the winner's run in the same request.
        request = run.get_save_kwargs_from_instance(
            # One run per date: the run id derives from it.
            condition=model.pk.does_not_exist(),
            return_values_on_condition_failure="ALL_OLD",
        )
        try:
            self._client.put_item(**request)
        except self._client.exceptions.ConditionalCheckFailedException as error:
            old = error.response.get("Item")
            raise RunExists(
                model.from_raw_data(old).record() if old else self.run(record["run_id"])
            ) from None
        return record

    def run(self, run_id: str) -> dict[str, Any] | None:
        try:
            return self._runs.get(run_pk(run_id), RUN_SK, consistent_read=True).record()
        except self._runs.DoesNotExist:
            return None

    def update_run(
        self, run_id: str, changes: dict[str, Any], *, expect: dict[str, Any] | None = None
    ) -> bool:
        """SET the changes if every `expect` attribute still holds its value; False if one does not."""
        model = self._runs
        # Never a stub run; and the caller's view of the run (its attempt, its execution) still holds.
        condition = model.pk.exists()
        for name, value in (expect or {}).items():
            condition &= model.get_attributes()[name] == value
        try:
            model(run_pk(run_id), RUN_SK).update(
                actions=[model.get_attributes()[k].set(v) for k, v in changes.items()], condition=condition
            )
        except UpdateError as error:
            if failed_condition(error):
                return False
            raise
        return True

    def close_claims(self, run_id: str, *, at: str) -> None:
        """Marks the run planned (`planned_at`, the first time's kept): from here on no claim and no
        new party record can commit for it (their transactions check this attribute)."""
        model = self._runs
        model(run_pk(run_id), RUN_SK).update(
            actions=[model.planned_at.set(model.planned_at | at)],  # if_not_exists: the first time's kept
            condition=model.pk.exists(),  # never a stub run
        )

    def _claims_open(self, tx: Transaction, run_id: str) -> None:
        """The ConditionCheck every claim carries: a posting claimed once Plan has listed the parties
        (and Pay perhaps netted their lines) would be settled without being paid, or make a party
        nobody pays, and the run could not close."""
        tx.condition_check(
            self._runs, run_pk(run_id), RUN_SK, self._runs.planned_at.does_not_exist(), tag=_CLAIMS_OPEN
        )

    def runs(self, *, limit: int, start: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict | None]:
        results = self._runs.query(
            RUNS_INDEX_PK, index_name="gsi1", scan_index_forward=False, limit=limit, last_evaluated_key=start
        )
        return [run.record() for run in results], results.last_evaluated_key

    # -- selecting and claiming postings -----------------------------------------------------

    def unsettled(self, shard: int, up_to: str) -> Iterator[list[dict[str, Any]]]:
        """Pages of unsettled postings of one shard due on or before `up_to` (the index is sparse:
        a claimed posting has left it). The index is eventually consistent: a posting it does not
        show yet is claimed by the next run, never lost.

        The index holds two kinds: ledger postings and carried amounts (CARRY_FORWARD). Each page is
        read raw and each item decoded by its kind: a carried amount by its model, a posting (the
        ledger's item, no `kind`) as plain values, keys included (the claim updates it by them)."""
        pages = PageIterator(
            self._carries._get_connection().query,
            (unsettled_partition(shard),),
            {"index_name": "gsi1", "range_key_condition": self._carries.gsi1sk <= f"{up_to}#~"},
        )
        for page in pages:
            yield [
                self._carries.from_raw_data(raw).record(keep_keys=True)
                if raw.get("kind", {}).get("S") == CARRY_KIND
                else plain_image(raw)
                for raw in page.get("Items", [])
            ]

    def ensure_party(self, run_id: str, party: str, *, created_at: str) -> None:
        """The party's record, before any of its postings is claimed: a run that stops between the two
        still finds the party (and its lines) when it resumes."""
        model = self._parties
        record = model(
            party_pk(run_id, party), party, kind=PARTY_KIND, run_id=run_id, party=party, created_at=created_at
        )
        tx = Transaction(self._client)
        self._claims_open(tx, run_id)
        # Already there when this run met the party in another shard or attempt.
        tx.save(record, model.pk.does_not_exist(), tag=_PARTY)
        try:
            tx.commit()
        except TransactWriteError as error:
            if tx.failed(error, _CLAIMS_OPEN):
                raise RunPlanned(run_id) from None
            if not tx.failed(error, _PARTY):
                raise

    def claim(self, run_id: str, postings: list[dict[str, Any]], *, claimed_at: str) -> tuple[int, int]:
        """Claims postings for the run, each with its line, in transactions of CLAIMS_PER_TRANSACTION.
        Returns (claimed now, taken by another run). A posting this run already claimed counts as
        neither (an index that lags, or a retry). RunPlanned once the run is planned: what this call
        claimed until then stays claimed (planned after it), the rest is left for the next run."""
        claimed = taken = 0
        pending = list(postings)
        while pending:
            chunk, pending = pending[:CLAIMS_PER_TRANSACTION], pending[CLAIMS_PER_TRANSACTION:]
            while chunk:
                tx = self._claim_transaction(run_id, chunk, claimed_at)
                try:
                    tx.commit()
                    claimed += len(chunk)
                    chunk = []
                except TransactWriteError as error:
                    if tx.failed(error, _CLAIMS_OPEN):
                        raise RunPlanned(run_id) from None
                    # Each posting's update is tagged with its place in the chunk.
                    refused = {i for i in range(len(chunk)) if tx.failed(error, i)}
                    if not refused:
                        raise  # a conflict or throttle: the step fails and is retried
                    for i in refused:
                        # Claimed already (ALL_OLD): by another run it is taken; by this one (an index
                        # that lags, a retry) it is neither.
                        old = tx.reason(error, i).raw_item
                        if not old or self._postings.from_raw_data(old).run_id != run_id:
                            taken += 1
                    chunk = [p for i, p in enumerate(chunk) if i not in refused]
        return claimed, taken

    def _claim_transaction(self, run_id: str, chunk: list[dict[str, Any]], claimed_at: str) -> Transaction:
        tx = Transaction(self._client)
        self._claims_open(tx, run_id)
        posting = self._postings
        for i, found in enumerate(chunk):
            line = self._lines.from_record(
                {k: found[k] for k in _LINE_FIELDS if k in found},
                pk=lines_pk(run_id, found["account"]),
                sk=found["journal_id"],
                kind=LINE_KIND,
                run_id=run_id,
                posting_pk=found["pk"],
                posting_sk=found["sk"],
            )
            tx.update(
                posting(found["pk"], found["sk"]),
                # The index keys go with the claim, so the next run's selection no longer sees it.
                [
                    posting.run_id.set(run_id),
                    posting.claimed_at.set(claimed_at),
                    posting.gsi1pk.remove(),
                    posting.gsi1sk.remove(),
                ],
                # A posting belongs to at most one run (and is never created by its claim).
                posting.pk.exists() & posting.run_id.does_not_exist(),
                return_values="ALL_OLD",
                tag=i,
            )
            tx.save(line)
        return tx

    # -- parties and lines -------------------------------------------------------------------

    def parties(self, run_id: str) -> Iterator[dict[str, Any]]:
        for bucket in range(PARTY_BUCKETS):
            start = None
            while True:
                records, start = self.party_page(run_id, bucket, start=start, limit=1000)
                yield from records
                if not start:
                    break

    def party_page(
        self, run_id: str, bucket: int, *, start: dict[str, Any] | None, limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        results = self._parties.query(
            parties_pk(run_id, bucket), consistent_read=True, limit=limit, last_evaluated_key=start
        )
        return [party.record() for party in results], results.last_evaluated_key

    def party(self, run_id: str, party: str) -> dict[str, Any] | None:
        try:
            return self._parties.get(party_pk(run_id, party), party, consistent_read=True).record()
        except self._parties.DoesNotExist:
            return None

    def lines(self, run_id: str, party: str) -> list[dict[str, Any]]:
        return [line.record() for line in self._lines.query(lines_pk(run_id, party), consistent_read=True)]

    def set_outcomes(self, run_id: str, party: str, currencies: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Records the party's netting once; a retry finds it there and keeps the first one (the
        lines of a party cannot change after the claim step, so both would be equal anyway)."""
        model = self._parties
        record = model(party_pk(run_id, party), party)
        try:
            # The whole record comes back (ReturnValues ALL_NEW): the netting and what was there.
            record.update(
                actions=[model.currencies.set(currencies)],
                # Never a stub party; a netting recorded already is kept.
                condition=model.pk.exists() & model.currencies.does_not_exist(),
            )
        except UpdateError as error:
            if failed_condition(error):
                return self.party(run_id, party)
            raise
        return record.record()

    def set_transfer(
        self,
        run_id: str,
        party: str,
        currency: str,
        changes: dict[str, Any],
        *,
        from_status: str,
        journal: JournalTerms | None = None,
        business_date: str | None = None,
        posted_at: str | None = None,
        expect: dict[str, Any] | None = None,
        lease_free_before: str | None = None,
    ) -> bool:
        """Moves one currency's transfer forward from `from_status`; False if it is no longer there.

        `expect`: fields of the transfer that must still be what they were read as (None: absent).
        `lease_free_before`: the send lease (`sending_at`) must be free: absent, released (""), or
        taken before that time (its holder is dead by then).

        With `journal` (the transfer's, coupons.domain.transfer_journals) the move and the journal are
        ONE transaction: the journal is posted exactly when the transfer is recorded SENT, so a retry
        that finds it SENT finds it posted, and one that loses the move posts nothing. Its postings
        are born settled by this run (never in the unsettled index: no run settles a transfer)."""
        model = self._parties
        outcome = model.currencies[currency]
        actions = [outcome[k].set(v) for k, v in changes.items()]
        # Each step of a transfer from the one before: of two invocations, one moves it. (The map's
        # values are untyped: the status as the plain string it is stored as, not an enum.)
        condition = outcome["status"] == str(from_status)
        for name, value in (expect or {}).items():
            # Unchanged since read: of a give-up and a send starting, one commits (services/instant.py).
            condition &= outcome[name].does_not_exist() if value is None else outcome[name] == value
        if lease_free_before is not None:
            # No live invocation is sending it: taken only when free, or its holder has outlived Lambda.
            condition &= outcome["sending_at"].does_not_exist() | (outcome["sending_at"] < lease_free_before)
        if journal is None:
            try:
                model(party_pk(run_id, party), party).update(actions=actions, condition=condition)
            except UpdateError as error:
                if failed_condition(error):
                    return False
                raise
            return True
        tx = Transaction(self._client)
        tx.update(model(party_pk(run_id, party), party), actions, condition, tag=_TRANSFER)
        self._ledger.add_journal(
            tx,
            journal,
            business_date=business_date,
            due_date=business_date,
            posted_at=posted_at,
            extra={"run_id": run_id},
            settled={"run_id": run_id, "settled_at": posted_at},
        )
        try:
            tx.commit()
        except TransactWriteError as error:
            if tx.failed(error, _TRANSFER):
                return False
            raise
        return True

    def balance(self, party: str) -> dict[str, int]:
        """The party's ledger balance per currency (what it is still owed, + , or owes, −)."""
        return self._ledger.balance(party)

    def set_party(self, run_id: str, party: str, changes: dict[str, Any]) -> None:
        model = self._parties
        model(party_pk(run_id, party), party).update(
            actions=[model.get_attributes()[k].set(v) for k, v in changes.items()],
            condition=model.pk.exists(),  # never a stub party
        )

    def carry_forward(self, carry: dict[str, Any], *, shard: int) -> None:
        """The amount a party carries into the next run, as an unsettled posting of its own (not a
        ledger posting: the balances already hold it). Written once: its id derives from the run."""
        model = self._carries
        item = model.from_record(
            carry,
            pk=carry_pk(carry["account"]),
            sk=carry_sk(carry["carried_from"], carry["currency"]),
            kind=CARRY_KIND,
            source_kind=CARRY_KIND,
            gsi1pk=unsettled_partition(shard),
            gsi1sk=f"{carry['due_date']}#{carry['account']}#{carry['journal_id']}",
        )
        try:
            # Never overwritten: an earlier attempt of this run may have written it (and a later run
            # claimed it since).
            item.save(condition=model.pk.does_not_exist())
        except PutError as error:
            if not failed_condition(error):
                raise

    def mark_settled(self, run_id: str, lines: list[dict[str, Any]], *, settled_at: str) -> None:
        """Marks the claimed postings settled by this run, SETTLES_PER_TRANSACTION per request. The
        condition keeps a posting settled by the run that claimed it, and by no other."""
        posting = self._postings
        for i in range(0, len(lines), SETTLES_PER_TRANSACTION):
            tx = Transaction(self._client)
            for line in lines[i : i + SETTLES_PER_TRANSACTION]:
                tx.update(
                    posting(line["posting_pk"], line["posting_sk"]),
                    [posting.settled.set(True), posting.settled_at.set(settled_at)],
                    posting.run_id == run_id,
                )
            tx.commit()


__all__ = ["UNSETTLED", "RunExists", "RunPlanned", "SettlementStore"]
