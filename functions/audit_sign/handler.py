"""Audit signer: on its schedule, signs the audit log's tree head with the tenant's KMS key and publishes
it to the write-once audit bucket (coupons.services.audit_signing)."""

from __future__ import annotations

import os
from functools import cache

from aws_lambda_powertools import Logger

from coupons.config import settings
from coupons.data.audit import AuditStore
from coupons.data.audit_heads import HeadArchive
from coupons.data.clients import dynamodb, kms, s3
from coupons.observability import metrics, tracer
from coupons.services.audit_signing import HeadSigner, kms_public_key, kms_signer

logger = Logger()


@cache
def signer() -> HeadSigner:
    key_id = os.environ["AUDIT_SIGNING_KEY_ID"]
    return HeadSigner(
        AuditStore(dynamodb(), settings().main_table, tenant=settings().tenant),
        HeadArchive(s3(), os.environ["AUDIT_BUCKET"]),
        sign=kms_signer(kms(), key_id),
        public_key=kms_public_key(kms(), key_id),
        key_id=key_id,
        tenant=settings().tenant,
        shards=settings().audit_log_shards,
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    document = signer().publish()
    sizes = [s["size"] for s in document["shards"]]
    logger.info("audit head published", extra={"timestamp_ms": document["timestamp_ms"], "sizes": sizes})
    return {"timestamp_ms": document["timestamp_ms"], "sizes": sizes}
