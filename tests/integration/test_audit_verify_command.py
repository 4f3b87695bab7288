"""`make audit-verify` (python -m infra.audit_verify): a log tampered with in the table, in any way, makes
the command exit 1 naming the first bad sequence number; a forged head is named too; an untouched log
exits 0. A head is published after every entry here, so an edit is placed at its exact seq."""

from __future__ import annotations

import json

import pytest

from coupons.data.models.audit import entry_pk, entry_sk
from coupons.domain import audit
from coupons.services import audit as service
from infra import audit_verify
from tests.integration.conftest import AUDIT_BUCKET, AUDIT_SHARDS, TABLE

N = 12
SHARD = 0


def fields(i: int) -> dict:
    return {
        "item": "COUPON",
        "key": {"pk": f"COUPON#c{i}", "sk": "COUPON"},
        "changes": {"state": {"new": f"S{i}"}},
    }


@pytest.fixture
def log(audit_world):
    auditor = service.Auditor(audit_world.store)
    for i in range(N):
        auditor.append(
            [service.Pending(f"t:{i}", SHARD, f"2026-12-01T00:00:{i:02d}.000000Z", "change", fields(i))]
        )
        audit_world.signer.publish()
    return audit_world


@pytest.fixture
def run(log, tmp_path, capsys):
    key_file = tmp_path / "audit-key.der"
    key_file.write_bytes(log.public_key)

    def verify() -> tuple[int, str, dict]:
        code = audit_verify.main([
            "--table", TABLE, "--bucket", AUDIT_BUCKET, "--tenant-name", "test", "--shards", str(AUDIT_SHARDS),
            "--public-key", str(key_file), "--region", "eu-west-1",
        ])  # fmt: skip
        out = capsys.readouterr()
        return code, out.err, json.loads(out.out) if out.out.strip() else {}

    return verify


def key(seq: int) -> dict:
    return {"pk": {"S": entry_pk(SHARD, seq)}, "sk": {"S": entry_sk(seq)}}


def read(aws, seq: int) -> dict:
    return aws.get_item(TableName=TABLE, Key=key(seq))["Item"]


def write_data(aws, seq: int, data: bytes) -> None:
    item = read(aws, seq)
    item["data"] = {"B": data}
    aws.put_item(TableName=TABLE, Item=item)


def test_an_untouched_log_verifies(run):
    code, err, report = run()
    assert code == 0, err
    assert report["ok"] and report["heads"] == N
    assert report["shards"][str(SHARD)]["verified_size"] == N


def test_an_edited_entry_is_named_by_its_seq(run, aws):
    write_data(aws, 5, audit.entry_bytes(5, "2026-12-01T00:00:05.000000Z", "change", fields(99)))
    code, err, report = run()
    assert code == 1
    assert "first bad sequence number 5 (entries_differ" in err


def test_a_deleted_entry_is_named_by_its_seq(run, aws):
    aws.delete_item(TableName=TABLE, Key=key(5))
    code, err, _ = run()
    assert code == 1
    assert "first bad sequence number 5 (missing" in err


def test_reordered_entries_are_named_by_the_first_seq_out_of_place(run, aws):
    four, five = read(aws, 4)["data"]["B"], read(aws, 5)["data"]["B"]
    write_data(aws, 4, five)
    write_data(aws, 5, four)
    code, err, _ = run()
    assert code == 1
    assert "first bad sequence number 4 (seq_mismatch" in err


def test_an_inserted_entry_is_named_by_its_seq_even_when_every_later_one_is_renumbered(run, aws):
    # the forger re-encodes every later entry with its new seq, so the numbering alone looks right
    entries = [audit.decode(read(aws, s)["data"]["B"]) for s in range(N)]
    forged = {"seq": 5, "time": "2026-12-01T00:00:05.500000Z", "kind": "change", "fields": fields(77)}
    rewritten = entries[:5] + [forged] + entries[5:]
    for seq, entry in enumerate(rewritten):
        if seq >= 5:
            item = read(aws, min(seq, N - 1))
            item.update(key(seq))
            item["seq"] = {"N": str(seq)}
            item["data"] = {"B": audit.entry_bytes(seq, entry["time"], entry["kind"], entry["fields"])}
            aws.put_item(TableName=TABLE, Item=item)
    code, err, _ = run()
    assert code == 1
    assert "first bad sequence number 5 (entries_differ" in err


def test_a_head_replaced_by_a_forged_version_is_named(run, log):
    (first, *_), s3 = log.archive.keys(), log.s3
    document = json.loads(s3.get_object(Bucket=AUDIT_BUCKET, Key=first)["Body"].read())
    document["signature"] = document["signature"][:-8] + (
        "A" * 8 if not document["signature"].endswith("A" * 8) else "B" * 8
    )
    # Object Lock keeps the signed version; a PutObject still makes a new current version
    s3.put_object(Bucket=AUDIT_BUCKET, Key=first, Body=json.dumps(document).encode())
    code, err, report = run()
    assert code == 1
    assert report["head_problems"][0]["what"] in ("bad_signature", "malformed_head")
    assert report["head_problems"][0]["head"] == 0


def test_heads_signed_by_another_key_vouch_for_nothing(log, tmp_path, capsys, aws):
    other = log.kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    key_file = tmp_path / "other.der"
    key_file.write_bytes(log.kms.get_public_key(KeyId=other)["PublicKey"])
    code = audit_verify.main([
        "--table", TABLE, "--bucket", AUDIT_BUCKET, "--tenant-name", "test", "--shards", str(AUDIT_SHARDS),
        "--public-key", str(key_file), "--region", "eu-west-1",
    ])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert {p["what"] for p in report["head_problems"]} == {"bad_signature"}
    assert len(report["head_problems"]) == N
