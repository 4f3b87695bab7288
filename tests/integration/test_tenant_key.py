"""The tenant key is read from Secrets Manager (moto) on first use, once per container, and refused when
the deployment gave no usable secret."""

from __future__ import annotations

import importlib
import threading

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from coupons.data import secrets

VALUE = "Zk3q" * 16  # 64 characters of [A-Za-z0-9], the shape the stack generates


@pytest.fixture
def secretsmanager(monkeypatch):
    monkeypatch.delenv(secrets.ENV_VAR, raising=False)
    secrets.clear_cache()
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="eu-west-1")
    secrets.clear_cache()


def deployed(client, monkeypatch, **value) -> str:
    """A tenant secret as the stack makes it, its ARN in the function's environment."""
    arn = client.create_secret(Name=f"tenant-{len(value)}", **value)["ARN"]
    monkeypatch.setenv(secrets.ENV_VAR, arn)
    return arn


def count_reads() -> list[str]:
    """Every GetSecretValue the module's own client sends, from a botocore event hook."""
    calls: list[str] = []
    secrets._secretsmanager().meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda params, **_: calls.append(params["body"])
    )
    return calls


def test_the_key_is_the_secret_strings_utf8_bytes(secretsmanager, monkeypatch):
    deployed(secretsmanager, monkeypatch, SecretString=VALUE)
    assert secrets.tenant_key() == VALUE.encode("utf-8")


def test_the_key_is_read_once_per_container_even_by_threads_starting_together(secretsmanager, monkeypatch):
    arn = deployed(secretsmanager, monkeypatch, SecretString=VALUE)
    reads = count_reads()
    barrier = threading.Barrier(16)
    found: list[bytes] = []

    def first_request():
        barrier.wait()
        found.append(secrets.tenant_key())

    threads = [threading.Thread(target=first_request) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [VALUE.encode()] * 16
    assert len(reads) == 1
    # Still the cached key after the secret changed underneath: kept for the container's life.
    secretsmanager.put_secret_value(SecretId=arn, SecretString="x" * 64)
    assert secrets.tenant_key() == VALUE.encode() and len(reads) == 1


def test_importing_the_module_reads_nothing_and_makes_no_client(monkeypatch):
    # No moto and no variable: a read or a client at import would fail or reach for real AWS here.
    monkeypatch.delenv(secrets.ENV_VAR, raising=False)
    secrets.clear_cache()
    importlib.reload(secrets)
    assert secrets._secretsmanager.cache_info().currsize == 0
    assert secrets._tenant_key.cache_info().currsize == 0


def test_without_the_variable_the_key_is_unavailable(secretsmanager):
    with pytest.raises(secrets.TenantKeyUnavailable, match=secrets.ENV_VAR):
        secrets.tenant_key()


@pytest.mark.parametrize(
    "value", [{"SecretBinary": b"k" * 64}, {"SecretString": "too-short"}], ids=["binary", "short"]
)
def test_a_secret_that_is_not_a_usable_key_is_refused(secretsmanager, monkeypatch, value):
    deployed(secretsmanager, monkeypatch, **value)
    with pytest.raises(secrets.TenantKeyUnavailable):
        secrets.tenant_key()


def test_a_failed_read_is_not_remembered(secretsmanager, monkeypatch):
    monkeypatch.setenv(secrets.ENV_VAR, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:not-yet-AbCdEf")
    with pytest.raises(ClientError) as caught:
        secrets.tenant_key()
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # The secret appears (a deployment finished): the next request reads it, no restart needed.
    deployed(secretsmanager, monkeypatch, SecretString=VALUE)
    assert secrets.tenant_key() == VALUE.encode()
