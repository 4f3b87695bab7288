"""A throttled quota shard during a flash drop: DynamoDB cancels the transaction with the reason
`ThrottlingError` (or `ProvisionedThroughputExceeded`) on the shard item when that partition is over its
1,000 write units/s. Nothing was written, quota is left on that shard and on the others: the claim should
go on (another shard, or the same one after a pause), as it does for a `TransactionConflict`, not fail
with a 500.

moto never throttles, so the client the stores use is wrapped: its first `times` issuance transactions
come back cancelled with DynamoDB's answer for a throttled shard, as botocore parses it.
"""

from __future__ import annotations

import random

import pytest

from coupons.data.campaigns import CampaignStore
from coupons.data.coupons import CouponStore
from coupons.domain.campaigns import CampaignTerms
from coupons.domain.principals import Principal, Role
from coupons.services import campaigns
from coupons.services.issuance import Issuer
from tests.integration.conftest import TABLE

ADMIN = Principal(Role.ADMIN)


class ThrottledShards:
    """The real client, except that its first `times` issuance transactions are cancelled by a shard
    reported throttled (reason `code` on the quota shard item, `None` on the coupon and holding)."""

    def __init__(self, client, times: int, code: str):
        self._client = client
        self.exceptions = client.exceptions
        self.left = times
        self.code = code

    def __getattr__(self, name):
        return getattr(self._client, name)

    def _make_api_call(self, operation: str, params: dict):
        """The client's one door (PynamoDB's requests and the low-level calls all pass it)."""
        actions = params.get("TransactItems", []) if operation == "TransactWriteItems" else []
        on_shard = ["Update" in a and a["Update"]["Key"]["pk"]["S"].startswith("QUOTA#") for a in actions]
        if self.left and any(on_shard):
            self.left -= 1
            # The reason sits at the shard's action (PynamoDB sends puts before updates).
            reasons = [
                {
                    "Code": self.code,
                    "Message": "Throughput exceeds the current capacity of your table or index.",
                }
                if shard
                else {"Code": "None"}
                for shard in on_shard
            ]
            codes = ", ".join(r["Code"] for r in reasons)
            message = (
                f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]"
            )
            raise self._client.exceptions.TransactionCanceledException(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": message},
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )
        return self._client._make_api_call(operation, params)


def campaign(aws, shards: int) -> str:
    store = CampaignStore(aws, TABLE)
    terms = {
        "name": "flash drop",
        "brand_id": "brand-a",
        "type": "FIXED",
        "currency": "CNY",
        "amount": 100,
        "valid_days": 30,
        "total_quantity": 16,
        "shards": shards,
    }
    created = campaigns.create(store, CampaignTerms.model_validate(terms), ADMIN)
    campaigns.transition(store, created["campaign_id"], "activate", ADMIN)
    return created["campaign_id"]


@pytest.mark.parametrize("code", ["ThrottlingError", "ProvisionedThroughputExceeded"])
@pytest.mark.parametrize("shards", [1, 8])
def test_a_throttled_shard_does_not_fail_the_claim(aws, shards, code):
    campaign_id = campaign(aws, shards)
    client = ThrottledShards(aws, times=1, code=code)
    issuer = Issuer(CampaignStore(client, TABLE), CouponStore(client, TABLE), rng=random.Random(7))

    coupon = issuer.issue_one(
        issuer.campaign_for(campaign_id, ADMIN), "user-1", segment=None, issued_by="admin"
    )

    assert coupon["user_id"] == "user-1"
    assert client.left == 0  # the throttled attempt happened, and the claim went on past it
    assert sum(CampaignStore(aws, TABLE).issued_counts(campaign_id, shards)) == 1


def test_a_throttled_shard_in_a_bulk_call_refuses_no_one(aws):
    campaign_id = campaign(aws, 8)
    client = ThrottledShards(aws, times=3, code="ThrottlingError")
    issuer = Issuer(CampaignStore(client, TABLE), CouponStore(client, TABLE), rng=random.Random(7))

    users = [f"user-{i}" for i in range(5)]
    answer = issuer.issue_many(
        issuer.campaign_for(campaign_id, ADMIN), users, segment=None, issued_by="admin"
    )

    assert answer["issued"] == 5, answer
    assert sum(CampaignStore(aws, TABLE).issued_counts(campaign_id, 8)) == 5
