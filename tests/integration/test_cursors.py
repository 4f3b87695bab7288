"""Paging cursors on every listing: signed with the tenant key and bound to the query that issued them,
so a cursor from another listing, a changed one, or one reused with other parameters is a 400
`invalid_cursor` naming `cursor`, never a query DynamoDB would refuse as a 500 (issue #10, point 7)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_funding_rules_api import redeemed_and_cleared
from tests.integration.test_issuance_api import active_campaign, issue, new_campaign
from tests.integration.test_settlement_runs_api import RUN, seed_parties, settlement, start  # noqa: F401

ENTRIES = "/v1/accounts/merchant:m-001/entries"
WALLET = "/v1/users/u-1/coupons"
RUN_PATH = f"/v1/settlement-runs/{RUN}"


def plain(value: dict) -> str:
    """A cursor as the API used to issue them: base64url JSON, unsigned."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def flipped(cursor: str) -> str:
    at = len(cursor) // 3
    return cursor[:at] + ("A" if cursor[at] != "A" else "B") + cursor[at + 1 :]


@pytest.fixture
def listings(api, keys, settlement):  # noqa: F811
    """One real next_cursor from each listing, with the path and query that issued it."""
    admin = keys["admin"]
    for _ in range(2):
        new_campaign(api, admin)
    campaign_id = active_campaign(api, keys, per_user_limit=10)
    for _ in range(2):
        assert issue(api, admin, campaign_id).status == 201
    for _ in range(2):  # two postings: a page of one always leaves a cursor, whatever their shards
        redeemed_and_cleared(
            api, keys, new_campaign(api, keys["issuer:brand-a"], brand_id=None, min_order=None)
        )
    start(api, admin)
    seed_parties(api)
    made = {}
    for name, path, query in (
        ("campaigns", "/v1/campaigns", {}),
        ("wallet", WALLET, {}),
        ("entries", ENTRIES, {"from": "2000-01-01", "to": "2999-12-31"}),
        ("run", RUN_PATH, {}),
    ):
        answer = api.call("GET", path, api_key=admin, query={**query, "limit": "1"})
        assert answer.status == 200 and answer.json["next_cursor"], (name, answer.raw)
        made[name] = (path, query, answer.json["next_cursor"])
    return made


def refused(api, key, path, query, cursor):
    answer = api.call("GET", path, api_key=key, query={**query, "limit": "1", "cursor": cursor})
    assert_problem(answer, 400, "invalid_cursor", field="cursor")


def test_each_listing_accepts_the_cursor_it_issued(api, keys, listings):
    for path, query, cursor in listings.values():
        answer = api.call("GET", path, api_key=keys["admin"], query={**query, "limit": "1", "cursor": cursor})
        assert answer.status == 200, answer.raw


def test_a_cursor_from_another_listing_is_400_on_every_listing(api, keys, listings):
    for name, (path, query, _) in listings.items():
        for other, (_, _, cursor) in listings.items():
            if other != name:
                refused(api, keys["admin"], path, query, cursor)


def test_a_cursor_with_one_character_changed_is_400_on_every_listing(api, keys, listings):
    for path, query, cursor in listings.values():
        refused(api, keys["admin"], path, query, flipped(cursor))


def test_a_cursor_reused_with_other_parameters_is_400(api, keys, listings):
    path, query, cursor = listings["entries"]
    refused(api, keys["admin"], path, {**query, "to": "2998-12-31"}, cursor)
    refused(api, keys["admin"], path, {**query, "from": "2001-01-01"}, cursor)
    path, query, cursor = listings["wallet"]
    refused(api, keys["admin"], path, {"state": "ISSUED"}, cursor)
    refused(api, keys["issuer:brand-a"], path, {}, cursor)  # another brand filter
    refused(api, keys["admin"], "/v1/users/u-2/coupons", {}, cursor)
    path, _, cursor = listings["campaigns"]
    refused(api, keys["issuer:brand-a"], path, {}, cursor)


@pytest.mark.parametrize(
    ("path", "query", "cursor"),
    [
        (
            "/v1/campaigns",
            {},
            plain({"gsi1pk": "CAMPAIGNS", "gsi1sk": "x", "pk": "COUPON#X", "sk": "COUPON"}),
        ),
        (WALLET, {}, plain({"gsi1pk": "USER#u-1", "gsi1sk": "x", "pk": "CAMPAIGN#c", "sk": "CAMPAIGN"})),
        (
            ENTRIES,
            {},
            plain({"r": "merchant:m-001", "b": 0, "k": {"pk": "ENTRIES#merchant:m-001#0", "sk": 7}}),
        ),
        (RUN_PATH, {}, plain({"r": RUN, "b": 0, "k": {"pk": "x", "sk": "y"}})),
    ],
    ids=["campaigns", "wallet", "entries", "run"],
)
def test_a_crafted_cursor_with_a_key_of_another_type_is_400(api, keys, listings, path, query, cursor):
    refused(api, keys["admin"], path, query, cursor)
