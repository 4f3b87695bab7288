"""Buckets: private, TLS only, encrypted, versioned, retained; statements access-logged."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import resources

pytestmark = pytest.mark.xdist_group("infra")


def test_every_bucket_is_private_encrypted_versioned_and_retained(template: dict):
    buckets = resources(template, "AWS::S3::Bucket")
    assert len(buckets) == 3  # statements, access logs, audit heads
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert bucket["DeletionPolicy"] == "Retain"
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}


def test_every_bucket_refuses_requests_without_tls(template: dict):
    policies = resources(template, "AWS::S3::BucketPolicy").values()
    guarded = {
        policy["Properties"]["Bucket"]["Ref"]
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    }
    assert guarded == set(resources(template, "AWS::S3::Bucket"))


def test_statements_are_kms_encrypted_and_access_logged(template: dict):
    statements_id = template["Outputs"]["StatementsBucketName"]["Value"]["Ref"]
    props = template["Resources"][statements_id]["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    log_bucket = props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    assert log_bucket != statements_id
    assert (
        json.dumps(template["Resources"][log_bucket]["Properties"]["BucketEncryption"]).count("AES256") == 1
    )
