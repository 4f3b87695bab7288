"""AWS clients, made lazily on first use: one made at import time would talk to real AWS before moto starts."""

from __future__ import annotations

import threading
from functools import cache

_lock = threading.Lock()


@cache
def _client(service: str):
    # botocore, not boto3: boto3 adds s3transfer and its resource layer to the cold start for nothing.
    import botocore.session
    from botocore.config import Config

    # Short timeouts with standard retries: an API caller would rather get a quick error than hang.
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    return botocore.session.get_session().create_client(service, config=config)


def reset() -> None:
    """Forget every client (tests: each moto instance needs clients made inside it)."""
    _client.cache_clear()


def dynamodb():
    # botocore sessions are not thread-safe while they build a client; the client itself is.
    with _lock:
        return _client("dynamodb")


def s3():
    with _lock:
        return _client("s3")


def stepfunctions():
    with _lock:
        return _client("stepfunctions")


def sqs():
    with _lock:
        return _client("sqs")


def kms():
    with _lock:
        return _client("kms")


def events():
    with _lock:
        return _client("events")
