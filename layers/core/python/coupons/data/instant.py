"""Instant settlement's items in the main table (coupons.data.models.instant): merchants' settlement
modes, the instant statements of the day, and what an instant payout does to postings beyond a run's
claim (reading their state, giving them back to the scheduled runs). The payout's own items — its run,
party, lines, transfer and journal — are settlement's (coupons.data.settlement), claimed by its rule.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError

from coupons.data.models.base import Transaction, failed_condition
from coupons.data.models.campaigns import campaign_pk
from coupons.data.models.instant import (
    CAMPAIGN_SETTLEMENT_KIND,
    INSTANT_LINE_KIND,
    MERCHANT_SETTLEMENT_KIND,
    SETTLEMENT_SK,
    CampaignSettlement,
    InstantStatementLine,
    MerchantSettlement,
    SettlementSetting,
    instant_line_sk,
    instant_statement_pk,
    merchant_settlement_pk,
)
from coupons.data.models.ledger import unsettled_partition, unsettled_sort_key
from coupons.data.models.settlement import (
    RUN_SK,
    PostingClaim,
    SettlementLine,
    SettlementRun,
    lines_pk,
    run_pk,
)

# Two actions per posting given back (the posting's update, its line's delete): TransactWriteItems
# takes at most 100.
RELEASES_PER_TRANSACTION = 50


class InstantStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._modes = MerchantSettlement.bound(client, table_name)
        self._campaign_modes = CampaignSettlement.bound(client, table_name)
        self._settings = SettlementSetting.bound(client, table_name)
        self._statement = InstantStatementLine.bound(client, table_name)
        self._postings = PostingClaim.bound(client, table_name)
        self._lines = SettlementLine.bound(client, table_name)
        self._runs = SettlementRun.bound(client, table_name)

    # -- merchants' modes -----------------------------------------------------------------------

    def set_mode(self, merchant_id: str, mode: str, *, at: str, by: str | None) -> dict[str, Any]:
        record = self._modes(
            merchant_settlement_pk(merchant_id),
            SETTLEMENT_SK,
            kind=MERCHANT_SETTLEMENT_KIND,
            merchant_id=merchant_id,
            mode=mode,
            updated_at=at,
            updated_by=by,
        )
        record.save()  # the last admin's word holds: a setting, not a money movement
        return record.record()

    def mode(self, merchant_id: str) -> dict[str, Any] | None:
        try:
            return self._modes.get(
                merchant_settlement_pk(merchant_id), SETTLEMENT_SK, consistent_read=True
            ).record()
        except self._modes.DoesNotExist:
            return None

    def modes(self, merchant_ids: list[str]) -> dict[str, str]:
        """The merchants' own modes (those that set one), in one batch read."""
        return self.settings(merchant_ids, [])[0]

    def settings(
        self, merchant_ids: list[str], campaign_ids: list[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(the merchants' own modes, the campaigns' modes) of those that set one: one BatchGetItem over
        both families (per 100 keys), strongly consistent, so a change applies from the next batch."""
        keys = [(merchant_settlement_pk(m), SETTLEMENT_SK) for m in sorted(set(merchant_ids))]
        keys += [(campaign_pk(c), SETTLEMENT_SK) for c in sorted(set(campaign_ids))]
        merchants: dict[str, str] = {}
        campaigns: dict[str, str] = {}
        for found in self._settings.batch_get(keys, consistent_read=True):
            if found.kind == CAMPAIGN_SETTLEMENT_KIND:
                campaigns[found.campaign_id] = found.mode
            elif found.kind == MERCHANT_SETTLEMENT_KIND:
                merchants[found.merchant_id] = found.mode
        return merchants, campaigns

    # -- campaigns' modes ------------------------------------------------------------------------

    def set_campaign_mode(self, campaign_id: str, mode: str, *, at: str, by: str | None) -> dict[str, Any]:
        record = self._campaign_modes(
            campaign_pk(campaign_id),
            SETTLEMENT_SK,
            kind=CAMPAIGN_SETTLEMENT_KIND,
            campaign_id=campaign_id,
            mode=mode,
            updated_at=at,
            updated_by=by,
        )
        record.save()  # the service read the campaign first; the last admin's word holds: a setting
        return record.record()

    def campaign_mode(self, campaign_id: str) -> dict[str, Any] | None:
        try:
            return self._campaign_modes.get(
                campaign_pk(campaign_id), SETTLEMENT_SK, consistent_read=True
            ).record()
        except self._campaign_modes.DoesNotExist:
            return None

    # -- postings --------------------------------------------------------------------------------

    def postings(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The claim state (run_id, settled) of postings by key, strongly consistent: whether a
        redelivered posting is still unclaimed, or whose it is."""
        found = {}
        for posting in self._postings.batch_get(sorted(set(keys)), consistent_read=True):
            found[(posting.pk, posting.sk)] = posting.record()
        return found

    def release(self, payout_id: str, lines: list[dict[str, Any]], *, at: str) -> int:
        """Gives a failed payout's postings back to the scheduled runs: each back in the unsettled
        index (its own shard and sort key), its claim removed, `left_by_payout` set; its line deleted
        in the same transaction (a line exists exactly when its posting is the payout's). How many."""
        P, L = self._postings, self._lines
        released = 0
        for i in range(0, len(lines), RELEASES_PER_TRANSACTION):
            tx = Transaction(self._client)
            chunk = lines[i : i + RELEASES_PER_TRANSACTION]
            for line in chunk:
                shard = int(line["posting_pk"].rsplit("#", 1)[1])
                tx.update(
                    P(line["posting_pk"], line["posting_sk"]),
                    [
                        P.run_id.remove(),
                        P.claimed_at.remove(),
                        P.left_by_payout.set(payout_id),
                        P.gsi1pk.set(unsettled_partition(shard)),
                        P.gsi1sk.set(
                            unsettled_sort_key(line["due_date"], line["account"], line["journal_id"])
                        ),
                    ],
                    # Only this payout's, and never one settled: what was paid is never given back.
                    (P.run_id == payout_id) & (P.settled.does_not_exist() | (P.settled == False)),  # noqa: E712
                )
                tx.delete(L(lines_pk(payout_id, line["account"]), line["journal_id"]))
            try:
                tx.commit()
            except TransactWriteError:
                # A retried release after the first went through: nothing of this chunk is the
                # payout's any more (its lines are gone). Anything else is a real failure.
                if any(self._line_exists(payout_id, line) for line in chunk):
                    raise
                continue
            released += len(chunk)
        return released

    def _line_exists(self, payout_id: str, line: dict[str, Any]) -> bool:
        try:
            self._lines.get(lines_pk(payout_id, line["account"]), line["journal_id"], consistent_read=True)
        except self._lines.DoesNotExist:
            return False
        return True

    def count_attempt(self, payout_id: str) -> int:
        """ADDs one failed attempt to the payout's run item; the count after it."""
        R = self._runs
        run = R(run_pk(payout_id), RUN_SK)
        run.update(actions=[R.attempt.add(1)], condition=R.pk.exists())  # never a stub payout
        return int(run.attempt)

    # -- the instant statement of the day --------------------------------------------------------

    def append_statement(self, line: dict[str, Any]) -> None:
        """Appends one payout (one currency) to the party's statement of the day, once: its key derives
        from the payout, so a redelivered batch that finds the payout SENT appends nothing twice."""
        M = self._statement
        item = M.from_record(
            line,
            pk=instant_statement_pk(line["party"], line["day"]),
            sk=instant_line_sk(line["payout_id"], line["currency"]),
            kind=INSTANT_LINE_KIND,
        )
        try:
            item.save(condition=M.pk.does_not_exist())  # appended once per payout and currency
        except PutError as error:
            if not failed_condition(error):
                raise

    def statement(self, party: str, day: str) -> list[dict[str, Any]]:
        return [
            line.record()
            for line in self._statement.query(instant_statement_pk(party, day), consistent_read=True)
        ]


__all__ = ["InstantStore", "RELEASES_PER_TRANSACTION"]
