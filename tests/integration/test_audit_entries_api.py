"""GET /v1/audit/entries/{id}: the entry and its proof, to the parties it concerns (and admins), checked
here by an independent implementation: RFC 6962 hashing written below and the `cryptography` package's
ECDSA over the KMS public key — not the project's verifier."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from coupons.services import audit as service
from tests.audit_proofs import check_independently
from tests.integration.conftest import AUDIT_BUCKET


@pytest.fixture
def reader_env(api, audit_world, monkeypatch):
    import dependencies

    monkeypatch.setenv("AUDIT_BUCKET", AUDIT_BUCKET)
    dependencies.audit_reader.cache_clear()
    return audit_world


def _append_redemption(world, merchant: str, n: int) -> list[str]:
    """n changes of redemption items of `merchant` (as the stream would give them); their entry ids."""
    auditor = service.Auditor(world.store)
    ids = []
    for i in range(n):
        image = {
            "pk": f"REDEMPTION#r-{merchant}-{i}",
            "sk": "REDEMPTION",
            "merchant_id": merchant,
            "brand_id": "brand-a",
        }
        pending = service.change(
            event_id=f"ev-{merchant}-{i}", event_name="INSERT", old=None, new=image,
            at=datetime(2026, 12, 1, tzinfo=UTC), shards=4,
        )  # fmt: skip
        auditor.append([pending])
        seq = world.store.head(pending.shard).size - 1
        ids.append(service.entry_id(pending.shard, seq))
    return ids


def test_a_merchant_gets_its_redemptions_entry_with_a_proof_an_independent_checker_accepts(
    api, keys, reader_env
):
    ids = _append_redemption(reader_env, "m-001", 5) + _append_redemption(reader_env, "m-002", 4)
    reader_env.signer.publish()
    for entry_id in ids[:5]:
        answer = api.call("GET", f"/v1/audit/entries/{entry_id}", api_key=keys["merchant:m-001"])
        assert answer.status == 200, answer.raw
        body = answer.json
        assert body["status"] == "SIGNED" and body["entry"]["fields"]["item"] == "REDEMPTION"
        check_independently(body, reader_env.public_key)


def test_a_tampered_proof_fails_the_independent_check(api, keys, reader_env):
    (entry_id,) = _append_redemption(reader_env, "m-001", 1)
    _append_redemption(reader_env, "m-002", 6)
    reader_env.signer.publish()
    body = api.call("GET", f"/v1/audit/entries/{entry_id}", api_key=keys["admin"]).json
    edited = dict(body, entry_bytes=base64.b64encode(base64.b64decode(body["entry_bytes"]) + b" ").decode())
    with pytest.raises(AssertionError):
        check_independently(edited, reader_env.public_key)


def test_another_merchants_entry_is_not_found_and_an_admin_sees_every_one(api, keys, reader_env):
    (mine,) = _append_redemption(reader_env, "m-001", 1)
    reader_env.signer.publish()
    other = api.call("GET", f"/v1/audit/entries/{mine}", api_key=keys["merchant:m-002"])
    assert other.status == 404 and other.json["code"] == "audit_entry_not_found"
    assert api.call("GET", f"/v1/audit/entries/{mine}", api_key=keys["issuer:brand-a"]).status == 200
    assert api.call("GET", f"/v1/audit/entries/{mine}", api_key=keys["issuer:brand-b"]).status == 404
    assert api.call("GET", f"/v1/audit/entries/{mine}", api_key=keys["admin"]).status == 200
    assert api.call("GET", "/v1/audit/entries/not-an-id", api_key=keys["admin"]).status == 404


def test_an_entry_appended_after_the_latest_head_is_pending_signature(api, keys, reader_env):
    reader_env.signer.publish()
    (entry_id,) = _append_redemption(reader_env, "m-001", 1)
    answer = api.call("GET", f"/v1/audit/entries/{entry_id}", api_key=keys["merchant:m-001"])
    assert answer.status == 200
    assert answer.json["status"] == "PENDING_SIGNATURE" and answer.json["proof"] is None
