"""Verify a tenant's audit log (docs/audit.md, "Verifying"): every published head's signature, the shard
heads each one covers, every stored entry against them; names the first bad sequence number.

    python -m infra.audit_verify --tenant demo [--region eu-west-1] [--public-key key.der|key.pem]
    python -m infra.audit_verify --endpoints-file .local/endpoints.json       # the local stack (make audit-verify)

The public key is the one given (pin it: a key read from the place that is being checked proves nothing),
or else read from KMS (GetPublicKey of the stack's AuditSigningKeyId), never from the published heads.
Prints a JSON report; exits 0 when everything verifies, 1 naming the first bad shard and seq (or head)
otherwise, 2 when the log cannot be read at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path


def ecdsa_verifier(public_key: bytes) -> Callable[[bytes, bytes], bool]:
    """verify(message, DER signature) for a P-256 public key (DER SubjectPublicKeyInfo or PEM)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    key = (
        load_pem_public_key(public_key)
        if public_key.startswith(b"-----")
        else load_der_public_key(public_key)
    )
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("the audit key is an ECC_NIST_P256 key")

    def verify(message: bytes, signature: bytes) -> bool:
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            return False

    return verify


def verify_tenant(session, *, table: str, bucket: str, tenant: str, shards: int, public_key: bytes):
    from coupons.data.audit import AuditStore
    from coupons.data.audit_heads import HeadArchive
    from coupons.services.audit_check import check

    store = AuditStore(session.client("dynamodb"), table, tenant=tenant)
    archive = HeadArchive(session.client("s3"), bucket)
    return check(
        (document for _, document in archive.documents()),
        lambda shard, upto: store.entries(shard, upto=upto),
        tenant=tenant,
        shards=shards,
        verify=ecdsa_verifier(public_key),
    )


def verdict(report) -> str:
    if report.ok:
        return "audit log verified"
    first = report.first_bad()
    if first is not None:
        shard, problem = first
        return f"audit log NOT verified: shard {shard}, first bad sequence number {problem.seq} ({problem.what}: {problem.detail})"
    problem = report.head_problems[0]
    return f"audit log NOT verified: published head {problem.head} ({problem.what})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--tenant", help="a deployed tenant: its stack's outputs name the table, bucket and key"
    )
    target.add_argument("--endpoints-file", type=Path, help="the local stack's .local/endpoints.json")
    target.add_argument(
        "--table", help="the main table, named directly (with --bucket, --tenant-name, --shards)"
    )
    parser.add_argument("--bucket")
    parser.add_argument("--tenant-name")
    parser.add_argument("--shards", type=int)
    parser.add_argument("--region")
    parser.add_argument(
        "--public-key", type=Path, help="the pinned public key (DER or PEM); default: from KMS"
    )
    args = parser.parse_args(argv)

    import boto3

    from infra.tenants import load_tenant

    shards = args.shards
    if args.table:
        if not (args.bucket and args.tenant_name and args.shards and args.public_key):
            parser.error("--table needs --bucket, --tenant-name, --shards and --public-key")
        session = boto3.session.Session(region_name=args.region)
        outputs = {
            "TenantName": args.tenant_name,
            "MainTableName": args.table,
            "AuditBucketName": args.bucket,
        }
    elif args.endpoints_file:
        if not args.endpoints_file.is_file():
            print(
                f"{args.endpoints_file} not found: start the local stack first (make local)", file=sys.stderr
            )
            return 2
        from infra.local.moto_server import aws_env

        endpoints = json.loads(args.endpoints_file.read_text())
        os.environ.update(aws_env(endpoints["moto_endpoint"], endpoints["region"]))
        session = boto3.session.Session(region_name=endpoints["region"])
        outputs = endpoints["outputs"]
    else:
        session = boto3.session.Session(region_name=args.region)
        stack = session.client("cloudformation").describe_stacks(StackName=f"CouponClearing-{args.tenant}")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0].get("Outputs", [])}
    tenant = outputs["TenantName"]
    shards = shards or load_tenant(tenant).audit_log_shards
    if args.public_key:
        public_key = args.public_key.read_bytes()
    else:
        public_key = session.client("kms").get_public_key(KeyId=outputs["AuditSigningKeyId"])["PublicKey"]
    try:
        report = verify_tenant(
            session, table=outputs["MainTableName"], bucket=outputs["AuditBucketName"], tenant=tenant,
            shards=shards, public_key=public_key,
        )  # fmt: skip
    except Exception as err:  # noqa: BLE001 - unreadable is its own answer (2), not a verdict
        print(f"audit log could not be read: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report.summary(), indent=2, sort_keys=True))
    print(verdict(report), file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
