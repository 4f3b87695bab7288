"""The tenant key: the per-tenant secret in AWS Secrets Manager (created by the stack) that signs QR tokens
and derives each coupon's TOTP secret (`coupons.domain.verification`).

Read on first use, never at import (a client made at import would talk to real AWS before moto starts,
and a function that never verifies anything should not pay for it), then kept for the container's
life: one GetSecretValue per cold start, none on the redemption hot path. The stack never rotates the
secret on a schedule (a new key voids every outstanding QR token and every coupon's TOTP secret), so a
cached key cannot go stale underneath a warm container; the rotation runbook redeploys the functions.

The key is the SecretString's UTF-8 bytes, used as they are. The stack generates 64 characters from
[A-Za-z0-9] (about 381 bits): already uniformly random, so there is nothing to decode or stretch, and 64
bytes is exactly HMAC-SHA256's block size, so HMAC uses the key as given. A SecretBinary, or a string
shorter than MIN_KEY_BYTES, is refused as a misconfiguration rather than silently made into a weak key.
"""

from __future__ import annotations

import os
import threading
from functools import cache

# The variable the stack sets on every function that needs the key (infra/constructs/api.py reads it
# from here, so the name is written once).
ENV_VAR = "TENANT_SECRET_ARN"
MIN_KEY_BYTES = 32  # 256 bits: what HMAC-SHA256 can make use of

_lock = threading.Lock()


class TenantKeyUnavailable(RuntimeError):
    """The function is deployed without a usable tenant key: a deployment fault, answered as a 500."""


@cache
def _secretsmanager():
    # botocore, not boto3, as coupons/data/clients.py does: boto3 adds its import cost to the cold start.
    import botocore.session
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    return botocore.session.get_session().create_client("secretsmanager", config=config)


@cache
def _tenant_key() -> bytes:
    # functools.cache keeps only a returned value: a failed read (throttled, not yet deployed) is tried
    # again by the next request instead of being remembered for the container's life.
    arn = os.environ.get(ENV_VAR)
    if not arn:
        raise TenantKeyUnavailable(
            f"{ENV_VAR} is not set: this function was deployed without the tenant secret"
        )
    answer = _secretsmanager().get_secret_value(SecretId=arn)
    value = answer.get("SecretString")
    if value is None:
        raise TenantKeyUnavailable(f"the tenant secret {arn} has no SecretString")
    key = value.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise TenantKeyUnavailable(f"the tenant secret {arn} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def tenant_key() -> bytes:
    """The tenant key's bytes; the first call in a container reads Secrets Manager, later ones do not."""
    # One reader at a time, so threads starting together make one request, not one each.
    with _lock:
        return _tenant_key()


def clear_cache() -> None:
    """Forget the key and the client (tests that swap the secret or the moto mock between cases)."""
    with _lock:
        _tenant_key.cache_clear()
        _secretsmanager.cache_clear()
