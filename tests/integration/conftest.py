"""The API function run in-process against moto: a fresh table from the schema for every test."""

from __future__ import annotations

import base64
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
        "redemption_holds",
        "risk_holds",
        "ledger",
        "audit_reader",
        "tracer",
        "risk",
        "risk_rules",
        "commission",
        "orders",
        "instant",
        "instant_terms",
    ):
        getattr(dependencies, name).cache_clear()
    return importlib.import_module("handler")


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv(MAIN.env_var, TABLE)
    monkeypatch.setenv("TENANT", "test")
    monkeypatch.setenv("TENANT_TIME_ZONE", "Asia/Shanghai")
    monkeypatch.setenv("SETTLEMENT_T0_CUTOFF", "22:00")  # like demo's: what the API's intraday runs cut at
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


# -- audit log -----------------------------------------------------------------------------------------

AUDIT_SHARDS = 4
AUDIT_BUCKET = "coupons-test-audit-heads"


@dataclass
class AuditWorld:
    """The audit log over the test table, a KMS signing key and an Object Lock bucket, as a tenant has."""

    store: Any
    archive: Any
    signer: Any
    key_id: str
    public_key: bytes
    kms: Any
    s3: Any

    def append(self, n: int, *, prefix: str = "e", shard_key=None) -> None:
        from coupons.services import audit as service

        auditor = service.Auditor(self.store)
        by_shard: dict[int, list] = {}
        for i in range(n):
            key = shard_key(i) if shard_key else f"COUPON#{prefix}{i}"
            shard = service.shard_of(key, AUDIT_SHARDS)
            by_shard.setdefault(shard, []).append(
                service.Pending(f"test:{prefix}{i}", shard, f"2026-12-01T00:00:{i % 60:02d}.000000Z", "change",
                                {"item": "COUPON", "key": {"pk": key, "sk": "COUPON"}, "changes": {"n": {"new": i}}}, key)
            )  # fmt: skip
        for pending in by_shard.values():
            auditor.append(pending)


@pytest.fixture
def audit_world(aws) -> AuditWorld:
    from coupons.data.audit import AuditStore
    from coupons.data.audit_heads import HeadArchive
    from coupons.services.audit_signing import HeadSigner, kms_public_key, kms_signer

    kms = boto3.client("kms", region_name="eu-west-1")
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(
        Bucket=AUDIT_BUCKET, ObjectLockEnabledForBucket=True,
        CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
    )  # fmt: skip
    s3.put_object_lock_configuration(
        Bucket=AUDIT_BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 7}},
        },
    )  # fmt: skip
    store = AuditStore(aws, TABLE, tenant="test")
    archive = HeadArchive(s3, AUDIT_BUCKET)
    clock = iter(range(1_795_000_000, 1_796_000_000, 60))
    from datetime import UTC, datetime

    signer = HeadSigner(
        store, archive, sign=kms_signer(kms, key_id), public_key=kms_public_key(kms, key_id), key_id=key_id,
        tenant="test", shards=AUDIT_SHARDS, clock=lambda: datetime.fromtimestamp(next(clock), UTC),
    )  # fmt: skip
    return AuditWorld(store, archive, signer, key_id, kms.get_public_key(KeyId=key_id)["PublicKey"], kms, s3)


def load_audit_handler():
    spec = importlib.util.spec_from_file_location(
        "audit_handler", ROOT / "functions" / "audit" / "handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def audit_fn(aws, monkeypatch):
    import coupons.config
    import coupons.data.clients

    monkeypatch.setenv("AUDIT_LOG_SHARDS", str(AUDIT_SHARDS))
    coupons.config.settings.cache_clear()
    coupons.data.clients.reset()
    module = load_audit_handler()

    def deliver(event):
        return [
            f["itemIdentifier"]
            for f in module.lambda_handler(copy.deepcopy(event), FakeContext())["batchItemFailures"]
        ]

    deliver.module = module
    return deliver


@pytest.fixture
def log(aws):
    from coupons.data.audit import AuditStore

    return AuditStore(aws, TABLE, tenant="test")


def _wire(value):
    # moto keeps a record's time as a datetime and binary values as bytes; Lambda's event has epoch
    # seconds and base64 text.
    return base64.b64encode(value).decode() if isinstance(value, bytes) else int(value.timestamp())


class Stream:
    """The main table's stream as Lambda would read it: every record since the last read (from moto's
    backend: its DynamoDB Streams API is not implemented in-process)."""

    def __init__(self, ddb):
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        self.shard = dynamodb_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].get_table(TABLE).stream_shard
        self.read = 0

    def batch(self) -> dict:
        items = self.shard.items[self.read :]
        self.read += len(items)
        records = []
        for i, item in enumerate(items):
            r = json.loads(json.dumps(item.to_json(), default=_wire))
            r["eventSource"] = "aws:dynamodb"
            r["dynamodb"]["SequenceNumber"] = f"{self.read - len(items) + i:021d}"
            records.append(r)
        return {"Records": records}


@pytest.fixture
def stream(aws):
    return Stream(aws)
