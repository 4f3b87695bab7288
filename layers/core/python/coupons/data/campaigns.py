"""Campaign records and their quota shards in the main table.

A campaign's remaining quantity lives on `shards` items, each under its own partition key
(`QUOTA#{campaign}#{i}`), so a flash drop spreads its writes over that many partitions instead of
one hot item. Each shard also carries the campaign's status, so the issuance write checks "still
ACTIVE" on the item it writes anyway, with no extra read.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError

from coupons.data.idempotency import COMPLETION, raise_if_lock_lost
from coupons.data.models.base import Transaction, Write
from coupons.data.models.campaigns import (
    CAMPAIGN_SK,
    SHARD_SK,
    TAG_SK,
    Campaign,
    CampaignTag,
    QuotaShard,
    campaign_pk,
    shard_pk,
    tag_pk,
)
from coupons.data.paging import page_of

_TAG = "tag"


class TagTaken(Exception):
    """Another campaign of the tenant has this code tag already."""


class CampaignStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._campaign = Campaign.bound(client, table_name)
        self._tag = CampaignTag.bound(client, table_name)
        self._shard = QuotaShard.bound(client, table_name)

    def put_new(
        self, record: dict[str, Any], shard_capacities: list[int], *, completion: Write | None = None
    ) -> None:
        """The campaign and its quota shards, all or nothing; with `completion` (the Idempotency-Key's
        COMPLETED record) in the same transaction."""
        order = f"{record['created_at']}#{record['campaign_id']}"
        campaign = self._campaign.from_record(
            record,
            pk=campaign_pk(record["campaign_id"]),
            sk=CAMPAIGN_SK,
            gsi1pk="CAMPAIGNS",
            gsi1sk=order,
            gsi2pk=f"BRAND#{record['brand_id']}#CAMPAIGNS",
            gsi2sk=order,
        )
        tx = Transaction(self._client)
        # The id is fresh from the CSPRNG; the condition makes a collision an error, never an overwrite.
        tx.save(campaign, self._campaign.pk.does_not_exist())
        # The code tag names the campaign inside its codes: unique per tenant, by condition.
        tag = self._tag(tag_pk(record["code_tag"]), TAG_SK, campaign_id=record["campaign_id"])
        tx.save(tag, self._tag.pk.does_not_exist(), tag=_TAG)
        for i, capacity in enumerate(shard_capacities):
            shard = self._shard(
                shard_pk(record["campaign_id"], i),
                SHARD_SK,
                capacity=capacity,
                remaining=capacity,
                status=record["status"],
            )
            tx.save(shard, self._shard.pk.does_not_exist())
        if completion is not None:
            tx.add(completion, tag=COMPLETION)
        try:
            tx.commit()
        except TransactWriteError as error:
            raise_if_lock_lost(error, tx)
            if tx.failed(error, _TAG):
                raise TagTaken() from None
            raise

    def campaign_id_of_tag(self, tag: str) -> str | None:
        try:
            return self._tag.get(tag_pk(tag), TAG_SK).campaign_id
        except self._tag.DoesNotExist:
            return None

    def get(self, campaign_id: str) -> dict[str, Any] | None:
        """The campaign's terms and status (immutable terms: callers may cache this)."""
        try:
            return self._campaign.get(campaign_pk(campaign_id), CAMPAIGN_SK).record()
        except self._campaign.DoesNotExist:
            return None

    def issued_counts(self, campaign_id: str, shards: int) -> list[int]:
        """Coupons issued per shard (capacity - remaining), read in one request."""
        keys = [(shard_pk(campaign_id, i), SHARD_SK) for i in range(shards)]
        found = {s.pk: s for s in self._shard.batch_get(keys, consistent_read=True)}
        return [found[pk].capacity - found[pk].remaining for pk, _ in keys]

    def set_status(
        self,
        campaign_id: str,
        shards: int,
        *,
        allowed_from: set[str],
        to: str,
        at: str,
        completion: Write | None = None,
    ) -> bool:
        """Moves the campaign and every shard to `to` if the campaign's status is one of `allowed_from`.
        False when it is not (nothing written). With `completion` (the Idempotency-Key's COMPLETED
        record) in the same transaction."""
        campaign, shard = self._campaign, self._shard
        tx = Transaction(self._client)
        tx.update(
            campaign(campaign_pk(campaign_id), CAMPAIGN_SK),
            [campaign.status.set(to), campaign.status_changed_at.set(at)],
            # The transition rule, enforced by the write: no read-then-write race.
            campaign.status.is_in(*sorted(allowed_from)),
            tag="campaign",
        )
        for i in range(shards):
            tx.update(shard(shard_pk(campaign_id, i), SHARD_SK), [shard.status.set(to)])
        if completion is not None:
            tx.add(completion, tag=COMPLETION)
        try:
            tx.commit()
        except TransactWriteError as error:
            raise_if_lock_lost(error, tx)
            if tx.failed(error, "campaign"):
                return False
            raise
        return True

    def list(
        self, *, brand_id: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; every campaign (brand_id None) or one brand's."""
        index, partition = (
            ("gsi1", "CAMPAIGNS") if brand_id is None else ("gsi2", f"BRAND#{brand_id}#CAMPAIGNS")
        )
        return page_of(
            self._campaign,
            partition,
            index_name=index,
            query={"list": "campaigns", "partition": partition},
            limit=limit,
            cursor=cursor,
            scan_index_forward=False,
        )
