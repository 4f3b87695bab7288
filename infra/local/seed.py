"""Demo data, made the way a user of a fresh tenant makes it: the first admin key with the documented
bootstrap command's function, everything else over HTTP through the API."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

log = logging.getLogger("local.seed")

BRAND = "brand-demo"
PRINCIPALS = [
    ("issuer:brand-demo", "demo issuer for brand-demo"),
    ("merchant:m-001", "demo merchant m-001"),
    ("merchant:m-002", "demo merchant m-002"),
]
CAMPAIGNS = [
    {
        "name": "10 off",
        "brand_id": BRAND,
        "type": "FIXED",
        "currency": "CNY",
        "amount": 1000,
        "min_order": 5000,
        "valid_days": 30,
        "total_quantity": 1000,
    },
    {
        "name": "15% off, up to 30",
        "brand_id": BRAND,
        "type": "PERCENT",
        "currency": "CNY",
        "percent_bps": 1500,
        "max_discount": 3000,
        "valid_days": 30,
        "total_quantity": 1000,
    },
    {
        "name": "20 off 100",
        "brand_id": BRAND,
        "type": "THRESHOLD",
        "currency": "CNY",
        "amount": 2000,
        "min_order": 10000,
        "valid_days": 30,
        "total_quantity": 1000,
    },
    {
        "name": "500 gift card",
        "brand_id": BRAND,
        "type": "GIFT_CARD",
        "currency": "CNY",
        "amount": 50000,
        "valid_days": 365,
        "total_quantity": 100,
    },
]


class SeedError(RuntimeError):
    pass


@dataclass
class Seeded:
    keys: dict[str, str] = field(default_factory=dict)  # principal → plain key
    key_ids: dict[str, str] = field(default_factory=dict)
    campaigns: dict[str, str] = field(default_factory=dict)  # type → campaign_id


def request(
    base_url: str,
    method: str,
    path: str,
    *,
    key: str | None = None,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[int, dict, dict]:
    """One JSON request; (status, response headers, parsed body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base_url}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("x-api-key", key)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, resp_headers, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, resp_headers, raw = err.code, dict(err.headers), err.read()
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"raw": raw.decode(errors="replace")}
    return status, resp_headers, parsed


def _create(base_url: str, path: str, key: str, body: dict) -> dict:
    # An Idempotency-Key as any careful client sends one with a creating POST.
    status, _, answer = request(
        base_url, "POST", path, key=key, body=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    if status != 201:
        raise SeedError(f"POST {path} {json.dumps(body)} answered {status}: {json.dumps(answer)}")
    return answer


def seed(base_url: str, stack_name: str, *, region: str) -> Seeded:
    import boto3

    from infra.admin_key import create_admin_key, table_of

    seeded = Seeded()
    # The documented bootstrap (python -m infra.admin_key --tenant ...): table from the stack's outputs.
    table_name = table_of(stack_name, boto3.client("cloudformation", region_name=region))
    seeded.keys["admin"] = create_admin_key(
        table_name,
        description="local demo admin (make local)",
        dynamodb_client=boto3.client("dynamodb", region_name=region),
    )
    admin = seeded.keys["admin"]
    for principal, description in PRINCIPALS:
        answer = _create(
            base_url, "/v1/api-keys", admin, {"principal": principal, "description": description}
        )
        seeded.keys[principal] = answer["api_key"]
        seeded.key_ids[principal] = answer["key_id"]
    for terms in CAMPAIGNS:
        answer = _create(base_url, "/v1/campaigns", admin, terms)
        seeded.campaigns[terms["type"]] = answer["campaign_id"]
    log.info("seeded %d keys and %d campaigns", len(seeded.keys), len(seeded.campaigns))
    return seeded
