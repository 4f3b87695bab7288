"""The API function run in-process against moto: a fresh table from the schema for every test."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from coupons.data.ledger import LedgerStore
from coupons.data.schema import MAIN
from tests import conformance
from tests.events import api_request

ROOT = Path(__file__).resolve().parents[2]
TABLE = "coupons-test-main"
TENANT_KEY = b"k" * 64


class FakeContext:
    function_name = "api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:api"
    aws_request_id = "req-test"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    raw: str | None

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    @property
    def content_type(self) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")


class Api:
    """Calls the API function's handler with API Gateway proxy events, as the integration would."""

    def __init__(self, handler_module, ddb):
        self.handler = handler_module
        self.ddb = ddb

    def call(self, method: str, path: str, **kwargs) -> Answer:
        result = self.handler.lambda_handler(api_request(method, path, **kwargs), FakeContext())
        headers = dict(result.get("headers") or {})
        for k, values in (result.get("multiValueHeaders") or {}).items():
            headers.setdefault(k, values[-1])
        answer = Answer(result["statusCode"], headers, result.get("body"))
        conformance.record(method, path, answer.status, answer.content_type, answer.raw)
        return answer

    def items(self) -> list[dict[str, Any]]:
        return self.ddb.scan(TableName=TABLE)["Items"]


def load_api_handler():
    """Imports functions/api/handler.py as Lambda would (its folder first on the path), caches cleared."""
    folder = str(ROOT / "functions" / "api")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import coupons.config
    import coupons.data.clients
    import coupons.data.secrets
    import dependencies

    coupons.config.settings.cache_clear()
    coupons.data.clients.reset()
    coupons.data.secrets._tenant_key.cache_clear()
    coupons.data.secrets._secretsmanager.cache_clear()
    for name in (
        "campaigns",
        "api_keys",
        "idempotency",
        "authenticator",
        "coupons",
        "issuer",
        "redeemer",
        "ledger",
        "commission",
    ):
        getattr(dependencies, name).cache_clear()
    return importlib.import_module("handler")


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv(MAIN.env_var, TABLE)
    monkeypatch.setenv("TENANT", "test")
    monkeypatch.setenv("TENANT_TIME_ZONE", "Asia/Shanghai")
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-west-1")
        ddb.create_table(**MAIN.create_table_kwargs(TABLE))
        secret = boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
            Name="coupons-test-tenant-key", SecretString=TENANT_KEY.decode()
        )
        monkeypatch.setenv("TENANT_SECRET_ARN", secret["ARN"])
        yield ddb


@pytest.fixture
def api(aws) -> Api:
    return Api(load_api_handler(), aws)


@pytest.fixture
def keys(api) -> dict[str, str]:
    """One key per kind of principal, made as a real deployment makes them."""
    from infra.admin_key import create_admin_key

    admin = create_admin_key(TABLE, description="test admin", dynamodb_client=api.ddb)
    made = {"admin": admin}
    for principal in ("issuer:brand-a", "issuer:brand-b", "merchant:m-001", "merchant:m-002"):
        answer = api.call("POST", "/v1/api-keys", api_key=admin, body={"principal": principal})
        assert answer.status == 201, answer.raw
        made[principal] = answer.json["api_key"]
    return made


# -- clearing ----------------------------------------------------------------------------------------

# The demo funding rule's shares (basis points), as the `ledger` fixture stores it (fr_DEMO).
RULE = {"PLATFORM": 5000, "BRAND": 3000, "MERCHANT": 2000}


def load_clearing_handler():
    """functions/clearing/handler.py under its own module name (the API's is also `handler`)."""
    spec = importlib.util.spec_from_file_location(
        "clearing_handler", ROOT / "functions" / "clearing" / "handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ledger(aws):
    """The ledger store over the test table, with the demo rule fr_DEMO (50/30/20) in it."""
    import coupons.config
    import coupons.data.clients

    coupons.config.settings.cache_clear()
    coupons.data.clients.reset()
    store = LedgerStore(aws, TABLE)
    store.put_rule(
        {"rule_id": "fr_DEMO", "name": "demo 50/30/20", "brand_ids": ["brand-demo"]},
        {"version": 1, "shares": RULE, "effective_from": "2026-01-01T00:00:00Z", "status": "APPROVED"},
    )
    return store


@pytest.fixture
def clearing(ledger):
    """Delivers a stream batch to the clearing function; returns its batchItemFailures."""
    module = load_clearing_handler()

    def deliver(event):
        return module.lambda_handler(copy.deepcopy(event), FakeContext())["batchItemFailures"]

    return deliver
