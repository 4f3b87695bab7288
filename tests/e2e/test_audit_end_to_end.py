"""The audit log on the stack `make local` serves: changes made over HTTP reach the log through the stream
and the audit function, API calls through the queue; the signer (invoked as its schedule would) signs
with the deployed P-256 key; the heads bucket is Object Lock'ed so a locked version cannot be deleted;
`make audit-verify`'s command verifies the whole log."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import REPO, _makefile_env
from tests.e2e.support import aws_client

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

WAIT_S = 30


def _audit_sizes(local_stack) -> int:
    ddb = aws_client(local_stack, "dynamodb")
    total = 0
    for shard in range(4):
        found = ddb.get_item(
            TableName=local_stack["tables"]["main"], Key={"pk": {"S": f"AUDITLOG#{shard}"}, "sk": {"S": "HEAD"}},
            ConsistentRead=True,
        ).get("Item")  # fmt: skip
        total += int(found["size"]["N"]) if found else 0
    return total


def _sign(local_stack) -> dict:
    lam = aws_client(local_stack, "lambda")
    answer = lam.invoke(FunctionName=local_stack["outputs"]["AuditSignerFunctionName"], Payload=b"{}")
    payload = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, payload
    return payload


def test_the_signing_key_is_an_asymmetric_p256_key_locally(local_stack):
    kms = aws_client(local_stack, "kms")
    meta = kms.describe_key(KeyId=local_stack["outputs"]["AuditSigningKeyId"])["KeyMetadata"]
    assert (meta["KeySpec"], meta["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")


def test_changes_and_calls_over_http_are_appended_signed_and_verified(local_stack, api, keys):
    before = _audit_sizes(local_stack)
    created = api.ok("POST", "/v1/campaigns", keys["admin"], {
        "name": f"audit {uuid.uuid4().hex[:6]}", "brand_id": "brand-demo", "type": "FIXED", "currency": "CNY",
        "amount": 100, "valid_days": 30, "total_quantity": 10,
    })  # fmt: skip
    api.ok("GET", f"/v1/campaigns/{created['campaign_id']}", keys["admin"])
    deadline = time.monotonic() + WAIT_S
    while _audit_sizes(local_stack) < before + 3:  # the campaign's items and the two calls, at least
        assert time.monotonic() < deadline, "the audit log did not grow"
        time.sleep(0.5)
    signed = _sign(local_stack)
    assert sum(signed["sizes"]) >= before + 3
    command = [sys.executable, "-m", "infra.audit_verify", "--endpoints-file", local_stack["endpoints_file"]]
    done = subprocess.run(command, cwd=REPO, env=_makefile_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["heads"] >= 1


def test_the_heads_bucket_refuses_to_delete_a_locked_version(local_stack):
    _sign(local_stack)
    s3 = aws_client(local_stack, "s3")
    bucket = local_stack["outputs"]["AuditBucketName"]
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    versions = s3.list_object_versions(Bucket=bucket, Prefix="heads/")["Versions"]
    assert versions
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key=versions[0]["Key"], VersionId=versions[0]["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
