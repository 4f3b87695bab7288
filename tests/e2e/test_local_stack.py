"""Issue #2's acceptance, over HTTP, against the stack `make local` serves (the real template on moto)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
import requests

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

PROBLEM = "application/problem+json"
ROUTES = {
    ("post", "/v1/campaigns"),
    ("get", "/v1/campaigns"),
    ("get", "/v1/campaigns/{campaign_id}"),
    ("post", "/v1/api-keys"),
    ("delete", "/v1/api-keys/{key_id}"),
}


def fixed_campaign(name: str | None = None, brand: str = "brand-demo") -> dict:
    return {
        "name": name or f"e2e {uuid.uuid4().hex[:8]}",
        "brand_id": brand,
        "type": "FIXED",
        "currency": "CNY",
        "amount": 1000,
        "min_order": 5000,
        "valid_days": 30,
        "total_quantity": 1000,
    }


@pytest.fixture(scope="module")
def http():
    session = requests.Session()
    yield session
    session.close()


def call(http, base_url, method, path, *, key=None, json=None, headers=None, data=None):
    all_headers = dict(headers or {})
    if key:
        all_headers["x-api-key"] = key
    return http.request(method, f"{base_url}{path}", json=json, data=data, headers=all_headers, timeout=60)


def media_type(response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip()


def list_all(http, base_url, key) -> list[dict]:
    items, cursor = [], None
    while True:
        path = "/v1/campaigns?limit=100" + (f"&cursor={cursor}" if cursor else "")
        page = call(http, base_url, "GET", path, key=key)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def test_ready_well_within_a_minute(local_stack):
    # The budget is 60 s on a warm machine; the session fixture measured start to READY.
    assert local_stack["ready_seconds"] < 60, Path(local_stack["output_file"]).read_text()


def test_endpoints_file_names_what_was_deployed(local_stack):
    assert set(local_stack["keys"]) == {"admin", "issuer:brand-demo", "merchant:m-001", "merchant:m-002"}
    assert local_stack["stack_name"] == "CouponClearing-demo"
    assert set(local_stack["campaigns"]) == {"FIXED", "PERCENT", "THRESHOLD", "GIFT_CARD"}
    # The table exists in moto because the synthesized template created it there.
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=local_stack["moto_endpoint"], region_name=local_stack["region"]
    )
    table = dynamodb.describe_table(TableName=local_stack["tables"]["main"])["Table"]
    assert table["StreamSpecification"]["StreamEnabled"] is True


def test_create_then_get_campaign(http, base_url, keys):
    created = call(http, base_url, "POST", "/v1/campaigns", key=keys["admin"], json=fixed_campaign())
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["type"] == "FIXED" and campaign["amount"] == 1000

    read = call(http, base_url, "GET", f"/v1/campaigns/{campaign['campaign_id']}", key=keys["admin"])
    assert read.status_code == 200, read.text
    assert read.json() == campaign


def test_no_key_is_401_problem(http, base_url):
    response = call(http, base_url, "GET", "/v1/campaigns")
    assert response.status_code == 401
    assert media_type(response) == PROBLEM
    assert response.json()["status"] == 401


def test_unknown_key_is_401_problem(http, base_url):
    response = call(http, base_url, "GET", "/v1/campaigns", key="ck_NOTAKEY0000000_" + "0" * 32)
    assert response.status_code == 401
    assert media_type(response) == PROBLEM


def test_percent_out_of_range_names_the_field(http, base_url, keys):
    body = {
        "name": "too much",
        "brand_id": "brand-demo",
        "type": "PERCENT",
        "currency": "CNY",
        "percent_bps": 20000,
        "max_discount": 3000,
        "valid_days": 30,
        "total_quantity": 10,
    }
    response = call(http, base_url, "POST", "/v1/campaigns", key=keys["admin"], json=body)
    assert 400 <= response.status_code < 500, response.text
    assert media_type(response) == PROBLEM
    assert "percent_bps" in response.text


def test_openapi_lists_every_route(http, base_url):
    response = call(http, base_url, "GET", "/v1/openapi.json")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["openapi"].startswith("3.")
    served = {(method, path) for path, item in document["paths"].items() for method in item}
    assert served >= ROUTES, ROUTES - served


def test_issuer_key_sees_only_its_brand(http, base_url, keys):
    other = call(
        http, base_url, "POST", "/v1/campaigns", key=keys["admin"], json=fixed_campaign(brand="brand-other")
    )
    assert other.status_code == 201, other.text

    seen = list_all(http, base_url, keys["issuer:brand-demo"])
    assert seen, "the seeded brand-demo campaigns should be listed"
    assert {c["brand_id"] for c in seen} == {"brand-demo"}
    assert other.json()["campaign_id"] not in {c["campaign_id"] for c in seen}
    # The admin sees both brands.
    assert other.json()["campaign_id"] in {c["campaign_id"] for c in list_all(http, base_url, keys["admin"])}


def test_issuer_key_creates_for_its_brand(http, base_url, keys):
    created = call(
        http, base_url, "POST", "/v1/campaigns", key=keys["issuer:brand-demo"], json=fixed_campaign()
    )
    assert created.status_code == 201, created.text
    assert created.json()["brand_id"] == "brand-demo"


def test_merchant_key_may_not_create_campaigns(http, base_url, keys):
    response = call(
        http, base_url, "POST", "/v1/campaigns", key=keys["merchant:m-001"], json=fixed_campaign()
    )
    assert response.status_code == 403, response.text
    assert media_type(response) == PROBLEM


def test_seeded_campaigns_are_readable(http, base_url, keys, local_stack):
    for kind, campaign_id in local_stack["campaigns"].items():
        response = call(http, base_url, "GET", f"/v1/campaigns/{campaign_id}", key=keys["admin"])
        assert response.status_code == 200, response.text
        assert response.json()["type"] == kind


def test_unknown_route_is_404_problem(http, base_url, keys):
    response = call(http, base_url, "GET", "/v1/no-such-thing", key=keys["admin"])
    assert response.status_code == 404
    assert media_type(response) == PROBLEM


def test_wrong_method_is_405_problem(http, base_url, keys):
    response = call(http, base_url, "PUT", "/v1/campaigns", key=keys["admin"], json={})
    assert response.status_code == 405
    assert media_type(response) == PROBLEM


def test_malformed_json_is_400_problem(http, base_url, keys):
    response = call(
        http,
        base_url,
        "POST",
        "/v1/campaigns",
        key=keys["admin"],
        data=b'{"name": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert media_type(response) == PROBLEM


def test_concurrent_creates_and_replays(base_url, keys):
    """16 creates with their own keys and 8 replays of one key, all at once: each distinct key creates
    one campaign; the shared key creates exactly one, every answer to it the same campaign (or a 409
    while the first is still in flight)."""
    admin = keys["admin"]
    shared_key = str(uuid.uuid4())
    shared_body = fixed_campaign(name=f"e2e shared {shared_key}")
    distinct = [
        (str(uuid.uuid4()), fixed_campaign(name=f"e2e distinct {i} {uuid.uuid4().hex}")) for i in range(16)
    ]
    jobs = distinct + [(shared_key, shared_body)] * 8

    def post(job):
        idempotency_key, body = job
        # A session per thread: requests.Session is not guaranteed thread-safe.
        with requests.Session() as session:
            return call(
                session,
                base_url,
                "POST",
                "/v1/campaigns",
                key=admin,
                json=body,
                headers={"Idempotency-Key": idempotency_key},
            )

    with ThreadPoolExecutor(len(jobs)) as pool:
        responses = list(pool.map(post, jobs))

    distinct_answers, shared_answers = responses[:16], responses[16:]
    for response in distinct_answers:
        assert response.status_code == 201, response.text
    assert len({r.json()["campaign_id"] for r in distinct_answers}) == 16

    created = [r for r in shared_answers if r.status_code == 201]
    others = [r for r in shared_answers if r.status_code != 201]
    assert created, [r.text for r in shared_answers]
    # The same campaign in every answer (compared as JSON: a replay may order the keys differently).
    assert all(r.json() == created[0].json() for r in created), [r.text for r in created]
    for response in others:
        assert response.status_code == 409, response.text
        assert media_type(response) == PROBLEM

    replay = call(
        requests,
        base_url,
        "POST",
        "/v1/campaigns",
        key=admin,
        json=shared_body,
        headers={"Idempotency-Key": shared_key},
    )
    assert replay.status_code == 201
    assert replay.json() == created[0].json()

    names = [c["name"] for c in list_all(requests, base_url, admin)]
    assert names.count(shared_body["name"]) == 1
    for _, body in distinct:
        assert names.count(body["name"]) == 1
