"""The audit function on the table's real stream (moto) and on the API's audit queue: every committed
change and API call becomes one entry of its shard log, redacted, in order, exactly once under
redelivery and partial-batch retry; the stored log recomputes to its head and serves proofs."""

from __future__ import annotations

import json

import boto3
import pytest

from coupons.data.audit import AuditStore, LogMoved
from coupons.domain import audit, merkle
from coupons.services import audit as service
from tests.events import api_request
from tests.integration.conftest import AUDIT_SHARDS, TABLE, FakeContext

SHARDS = AUDIT_SHARDS


def all_entries(log):
    return {shard: list(log.entries(shard, upto=log.head(shard).size)) for shard in range(SHARDS)}


def assert_log_recomputes(log):
    """Every shard's stored entries give its head's root, seqs 0..n-1, and every entry has a proof."""
    for shard in range(SHARDS):
        head = log.head(shard)
        entries = list(log.entries(shard, upto=head.size))
        assert [s for s, _ in entries] == list(range(head.size))
        levels = merkle.SubtreeLevels([merkle.leaf_hash(d) for _, d in entries])
        assert merkle.CompactRange(head.size, head.compact).root() == levels.root()
        for seq, data in entries:
            proof = merkle.inclusion_proof(lambda lv, i, s=shard: log.subtree(s, lv, i), seq, head.size)
            assert merkle.verify_inclusion(seq, head.size, merkle.leaf_hash(data), proof, levels.root())


def decoded(log):
    return [audit.decode(d) for entries in all_entries(log).values() for _, d in entries]


def test_every_change_of_an_api_flow_becomes_one_entry_with_secrets_redacted(
    api, keys, aws, stream, audit_fn, log
):
    # given the table changes of creating keys and a campaign (keys fixture: five API keys)
    api.call("POST", "/v1/campaigns", api_key=keys["admin"], headers={"Idempotency-Key": "k-audit-1"}, body={
        "name": "audit", "brand_id": "brand-a", "type": "FIXED", "currency": "CNY", "amount": 100,
        "valid_days": 30, "total_quantity": 10})  # fmt: skip
    batch = stream.batch()
    changes = [r for r in batch["Records"]]
    assert changes
    # when the stream batch reaches the audit function
    assert audit_fn(batch) == []
    # then one change entry per record, in shard logs that recompute to their heads
    entries = decoded(log)
    assert len(entries) == len(changes)
    assert {e["kind"] for e in entries} == {"change"}
    api_keys = [e for e in entries if e["fields"]["item"] == "APIKEY"]
    assert api_keys and all(
        e["fields"]["changes"]["secret_hash"] == {"new": audit.REDACTED} for e in api_keys
    )
    assert {e["fields"]["event"] for e in entries} >= {"INSERT"}
    assert_log_recomputes(log)


def test_a_batch_delivered_again_appends_nothing(api, keys, aws, stream, audit_fn, log):
    batch = stream.batch()
    assert audit_fn(batch) == []
    before = all_entries(log)
    assert audit_fn(batch) == []
    assert all_entries(log) == before


def test_the_audit_logs_own_writes_are_not_logged_again(api, keys, aws, stream, audit_fn, log):
    assert audit_fn(stream.batch()) == []
    before = sum(log.head(s).size for s in range(SHARDS))
    # the appends just made are stream records too (heads, entries, references)
    own = stream.batch()
    assert own["Records"]
    assert audit_fn(own) == []
    assert sum(log.head(s).size for s in range(SHARDS)) == before


def test_after_a_failed_chunk_the_shards_later_records_fail_too_and_the_retry_appends_each_once(
    api, keys, aws, stream, audit_fn, log, monkeypatch
):
    batch = stream.batch()
    records = batch["Records"]
    shard_of = {
        r["dynamodb"]["SequenceNumber"]: service.shard_of(r["dynamodb"]["Keys"]["pk"]["S"], SHARDS)
        for r in records
    }
    victim = shard_of[records[1]["dynamodb"]["SequenceNumber"]]
    store = audit_fn.module.auditor()._store
    commit = store.commit

    def failing(shard, *args, **kwargs):
        if shard == victim:
            raise RuntimeError("throttled")
        return commit(shard, *args, **kwargs)

    monkeypatch.setattr(store, "commit", failing)
    failed = audit_fn(batch)
    assert failed == [s for s, sh in shard_of.items() if sh == victim]
    assert log.head(victim).size == 0
    # Lambda delivers again from the lowest failed record: records that went through come again
    monkeypatch.setattr(store, "commit", commit)
    lowest = next(i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] in failed)
    assert audit_fn({"Records": records[lowest:]}) == []
    assert sorted(e["fields"]["key"]["pk"] + e["fields"]["key"]["sk"] for e in decoded(log)) == sorted(
        r["dynamodb"]["Keys"]["pk"]["S"] + r["dynamodb"]["Keys"]["sk"]["S"] for r in records
    )
    assert_log_recomputes(log)


def test_a_writer_that_lost_the_race_for_a_shard_reads_the_head_again(aws, log):
    auditor = service.Auditor(log)
    commit = log.commit
    raced = []

    def racing(shard, before, after, rows, **kwargs):
        if not raced:  # another writer appends first
            raced.append(1)
            service.Auditor(AuditStore(aws, TABLE, tenant="test")).append(
                [service.Pending("other:1", 0, "2026-12-01T00:00:00.000000Z", "api_call", {"n": 0})]
            )
        return commit(shard, before, after, rows, **kwargs)

    log.commit = racing
    assert auditor.append(
        [service.Pending("mine:1", 0, "2026-12-01T00:00:01.000000Z", "api_call", {"n": 1})]
    ) == (1, 0)
    entries = [audit.decode(d) for _, d in log.entries(0, upto=2)]
    assert [(e["seq"], e["fields"]["n"]) for e in entries] == [(0, 0), (1, 1)]
    with pytest.raises(LogMoved):
        commit(0, log.head(0).__class__(1, ()), log.head(0), [], ref_expires_at=0)


def test_api_calls_from_the_queue_are_entries_once_each_with_their_key_redacted(aws, audit_fn, log):
    call = {
        "request_id": "req-1", "time": "2026-12-01T00:00:00.000000Z", "principal": "merchant:m-001",
        "key_id": "k1", "method": "POST", "route": "/v1/redemptions", "path": "/v1/redemptions", "status": 201,
        "source_ip": "203.0.113.7",
    }  # fmt: skip
    message = {"messageId": "m-1", "eventSource": "aws:sqs", "body": json.dumps(call)}
    poison = {"messageId": "m-2", "eventSource": "aws:sqs", "body": "{}"}
    assert audit_fn({"Records": [message, poison]}) == ["m-2"]
    assert audit_fn({"Records": [message]}) == []
    entries = decoded(log)
    assert len(entries) == 1
    assert entries[0]["kind"] == "api_call"
    assert entries[0]["fields"] == {k: call[k] for k in service.API_CALL_FIELDS}
    assert entries[0]["time"] == call["time"]


def test_each_api_call_is_sent_to_the_audit_queue_and_becomes_an_entry_without_its_key(
    aws, api, keys, audit_fn, log, monkeypatch
):
    sqs = boto3.client("sqs", region_name="eu-west-1")
    url = sqs.create_queue(QueueName="audit-calls")["QueueUrl"]
    monkeypatch.setenv("AUDIT_QUEUE_URL", url)
    for n, key in enumerate((keys["issuer:brand-a"], "ck_nope_wrong")):
        event = api_request("GET", "/v1/campaigns", api_key=key)
        event["requestContext"]["requestId"] = f"req-{n}"  # API Gateway's, one per request
        api.handler.lambda_handler(event, FakeContext())
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 2
    event = {
        "Records": [
            {"messageId": m["MessageId"], "eventSource": "aws:sqs", "body": m["Body"]} for m in messages
        ]
    }
    assert audit_fn(event) == []
    calls = sorted((e["fields"] for e in decoded(log)), key=lambda f: f["status"])
    assert [(c["principal"], c["status"], c["method"], c["path"]) for c in calls] == [
        ("issuer:brand-a", 200, "GET", "/v1/campaigns"),
        (None, 401, "GET", "/v1/campaigns"),
    ]
    assert all(c["source_ip"] == "203.0.113.7" and c["request_id"] for c in calls)
    assert keys["issuer:brand-a"] not in json.dumps(calls)
