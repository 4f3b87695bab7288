"""Idempotency-Key on creating POSTs: replays, reuse, requests in flight, scope per principal and API key."""

import json
import time

import pytest

from tests.integration.conftest import TABLE
from tests.integration.test_api_plumbing import assert_problem, campaign_body


def campaigns_in(api):
    return [i for i in api.items() if i["pk"]["S"].startswith("CAMPAIGN#")]


def post(api, key, body=None, raw=None, idem="idem-1"):
    return api.call(
        "POST", "/v1/campaigns", api_key=key, body=body, raw_body=raw, headers={"Idempotency-Key": idem}
    )


def test_the_same_key_and_body_replays_the_first_answer_and_writes_once(api, keys):
    first = post(api, keys["admin"], campaign_body())
    again = post(api, keys["admin"], campaign_body())
    assert (again.status, again.raw) == (first.status, first.raw)  # byte for byte
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(campaigns_in(api)) == 1


def test_whitespace_and_key_order_do_not_make_another_request(api, keys):
    body = campaign_body()
    first = post(api, keys["admin"], raw=json.dumps(body))
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4)
    again = post(api, keys["admin"], raw=reordered)
    assert again.json == first.json and len(campaigns_in(api)) == 1


def test_the_same_key_with_another_body_is_422(api, keys):
    post(api, keys["admin"], campaign_body())
    answer = post(api, keys["admin"], campaign_body(name="another"))
    assert_problem(answer, 422, "idempotency_key_reused", field="Idempotency-Key")
    assert len(campaigns_in(api)) == 1


def hold_key(api_key, body, *, token: str, locked_at: int) -> None:
    """Another request with `api_key` holding idem-1 for this body since `locked_at` (its lock lasts 60 s)."""
    import dependencies
    from coupons.domain.api_keys import key_id_of
    from coupons.domain.idempotency import fingerprint, scope

    dependencies.idempotency().acquire(
        scope("admin", key_id_of(api_key)),
        "idem-1",
        fingerprint=fingerprint("POST", "/v1/campaigns", body),
        token=token,
        now=locked_at,
        lock_until=locked_at + 60,
        expires_at=locked_at + 3600,
    )


def test_a_duplicate_while_the_first_is_in_flight_is_409(api, keys):
    body = campaign_body()
    hold_key(keys["admin"], body, token="other", locked_at=int(time.time()))
    assert_problem(post(api, keys["admin"], body), 409, "idempotency_request_in_flight")
    assert campaigns_in(api) == []


def test_a_lock_left_by_a_crashed_request_is_taken_over(api, keys):
    body = campaign_body()
    hold_key(keys["admin"], body, token="dead", locked_at=int(time.time()) - 120)
    assert post(api, keys["admin"], body).status == 201


def test_keys_are_scoped_per_principal(api, keys):
    mine = post(api, keys["issuer:brand-a"], campaign_body(brand_id=None))
    theirs = post(api, keys["issuer:brand-b"], campaign_body(brand_id=None))
    assert mine.status == theirs.status == 201
    assert mine.json["campaign_id"] != theirs.json["campaign_id"]


def test_a_refused_request_leaves_no_record_and_its_retry_runs_anew(api, keys):
    refused = post(api, keys["issuer:brand-a"], campaign_body(brand_id="brand-b"))
    assert refused.status == 403
    assert api.items() == [i for i in api.items() if not i["pk"]["S"].startswith("IDEMPOTENCY#")]
    assert post(api, keys["issuer:brand-a"], campaign_body(brand_id=None)).status == 201


def test_records_are_kept_at_least_24_hours_through_the_table_ttl(api, keys):
    post(api, keys["admin"], campaign_body())
    record = next(i for i in api.items() if i["pk"]["S"].startswith("IDEMPOTENCY#"))
    assert int(record["expires_at"]["N"]) - time.time() >= 24 * 3600
    ttl = api.ddb.describe_time_to_live(TableName=TABLE)
    assert ttl is not None  # the attribute itself is asserted on the CDK table in tests/infra


def test_a_malformed_idempotency_key_is_400_and_writes_nothing(api, keys):
    before = api.items()
    assert_problem(
        post(api, keys["admin"], campaign_body(), idem="x" * 300),
        400,
        "validation_failed",
        field="Idempotency-Key",
    )
    assert api.items() == before


def test_two_admin_keys_using_one_idempotency_key_each_get_their_own_answer(api, keys):
    other_admin = api.call("POST", "/v1/api-keys", api_key=keys["admin"], body={"principal": "admin"})
    assert other_admin.status == 201, other_admin.raw
    other = other_admin.json["api_key"]

    mine = post(api, keys["admin"], campaign_body(name="mine"), idem="shared")
    theirs = post(api, other, campaign_body(name="theirs"), idem="shared")

    assert (mine.status, theirs.status) == (201, 201), theirs.raw
    assert mine.json["campaign_id"] != theirs.json["campaign_id"]
    mine_again = post(api, keys["admin"], campaign_body(name="mine"), idem="shared")
    theirs_again = post(api, other, campaign_body(name="theirs"), idem="shared")
    assert (mine_again.raw, theirs_again.raw) == (mine.raw, theirs.raw)
    assert mine_again.headers["Idempotent-Replayed"] == theirs_again.headers["Idempotent-Replayed"] == "true"
    assert len(campaigns_in(api)) == 2


def test_releasing_a_key_never_deletes_a_completed_record(api):
    import dependencies

    store, now = dependencies.idempotency(), int(time.time())
    assert (
        store.acquire(
            "admin/K", "k", fingerprint="f", token="t", now=now, lock_until=now + 60, expires_at=now + 3600
        )
        is None
    )
    store.complete("admin/K", "k", token="t", status=201, body={"done": True})

    store.release("admin/K", "k", token="t")  # a holder that failed after its completion committed

    assert store.get("admin/K", "k")["response_body"] == {"done": True}


def test_a_request_whose_lock_was_taken_over_writes_nothing_not_even_its_effect(api, keys):
    import dependencies
    from coupons.api.idempotency import run_idempotent
    from coupons.domain.campaigns import CampaignTerms
    from coupons.domain.errors import IdempotencyRequestInFlight
    from coupons.domain.idempotency import fingerprint
    from coupons.domain.principals import Principal, Role
    from coupons.services import campaigns

    store, body, now = dependencies.idempotency(), campaign_body(), int(time.time())

    def slow_create(completion):
        # Meanwhile the lock ran out and a retry took the key over.
        store.acquire(
            "admin/K",
            "idem-1",
            fingerprint=fingerprint("POST", "/v1/campaigns", body),
            token="the-retry",
            now=now + 61,
            lock_until=now + 121,
            expires_at=now + 3600,
        )
        return 201, campaigns.create(
            dependencies.campaigns(), CampaignTerms(**body), Principal(Role.ADMIN), completion=completion
        )

    with pytest.raises(IdempotencyRequestInFlight):
        run_idempotent(
            store,
            scope="admin/K",
            key="idem-1",
            method="POST",
            path="/v1/campaigns",
            body=body,
            ttl_seconds=3600,
            run=slow_create,
            clock=lambda: now,
        )

    assert campaigns_in(api) == []
    assert store.get("admin/K", "idem-1")["token"] == "the-retry"
