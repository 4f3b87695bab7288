"""Signed tree heads: the signer signs one combined head over the shard heads with the KMS key (checked
here with the `cryptography` package, not the project's verifier) and publishes it to an Object Lock
bucket whose locked versions nobody can delete; the scheduled function does the same."""

from __future__ import annotations

import base64
import importlib.util
import json

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from coupons.data.audit_heads import LATEST
from coupons.domain import merkle
from coupons.domain.audit_heads import head_bytes, parse_head_document, shards_root
from tests.integration.conftest import AUDIT_BUCKET, AUDIT_SHARDS, ROOT, FakeContext


def test_a_published_head_is_signed_by_the_kms_key_over_its_shard_heads(audit_world):
    audit_world.append(25)
    document = audit_world.signer.publish()
    signed, shards = parse_head_document(document)
    # the signature is the KMS key's ECDSA P-256 over the head's bytes
    load_der_public_key(audit_world.public_key).verify(
        signed.signature, head_bytes(signed.head), ec.ECDSA(hashes.SHA256())
    )
    assert base64.b64decode(document["public_key"]) == audit_world.public_key
    assert signed.head.log_id == "test/audit" and signed.head.size == AUDIT_SHARDS
    assert signed.head.root == shards_root(shards)
    assert sum(h.size for h in shards) == 25
    for shard, head in enumerate(shards):
        entries = list(audit_world.store.entries(shard, upto=head.size))
        assert head.root == merkle.root_of([merkle.leaf_hash(d) for _, d in entries])
    assert audit_world.archive.latest() == document


def test_heads_are_published_in_time_order_and_each_is_kept(audit_world):
    audit_world.append(3)
    first = audit_world.signer.publish()
    audit_world.append(3, prefix="f")
    second = audit_world.signer.publish()
    documents = [d for _, d in audit_world.archive.documents()]
    assert documents == [first, second]
    assert second["timestamp_ms"] > first["timestamp_ms"]


def test_a_locked_head_cannot_be_deleted_nor_its_retention_shortened(audit_world):
    audit_world.signer.publish()
    s3 = audit_world.s3
    lock = s3.get_object_lock_configuration(Bucket=AUDIT_BUCKET)["ObjectLockConfiguration"]
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    (key,) = audit_world.archive.keys()
    version = s3.head_object(Bucket=AUDIT_BUCKET, Key=key)["VersionId"]
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=AUDIT_BUCKET, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.head_object(Bucket=AUDIT_BUCKET, Key=LATEST)["ObjectLockMode"] == "COMPLIANCE"


def test_the_scheduled_signer_function_publishes_a_head(audit_world, monkeypatch):
    import coupons.config
    import coupons.data.clients

    monkeypatch.setenv("AUDIT_SIGNING_KEY_ID", audit_world.key_id)
    monkeypatch.setenv("AUDIT_BUCKET", AUDIT_BUCKET)
    monkeypatch.setenv("AUDIT_LOG_SHARDS", str(AUDIT_SHARDS))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    coupons.config.settings.cache_clear()
    coupons.data.clients.reset()
    spec = importlib.util.spec_from_file_location(
        "audit_sign_handler", ROOT / "functions" / "audit_sign" / "handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    audit_world.append(5)
    answer = module.lambda_handler({"source": "aws.events"}, FakeContext())
    assert sum(answer["sizes"]) == 5
    assert json.loads(json.dumps(audit_world.archive.latest()))["timestamp_ms"] == answer["timestamp_ms"]
