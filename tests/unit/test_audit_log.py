"""Audit entries' canonical bytes, redaction of table changes, signed tree heads (ECDSA P-256 through the
`cryptography` package, as KMS would sign them) and the verifier naming the first bad entry or head."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from coupons.api import auth
from coupons.domain import audit, merkle
from coupons.domain.audit_heads import (
    HEAD_PREFIX,
    InvalidHead,
    SignedHead,
    TreeHead,
    head_bytes,
    parse_head_bytes,
    shard_proof,
    shards_root,
    sign_head,
    verify_head,
    verify_shard_head,
)
from coupons.domain.audit_verify import verify_entry, verify_log

LOG = "demo/audit/0"
TIME = "2025-03-01T10:00:00.000000Z"
KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def sign(message: bytes, key=KEY) -> bytes:
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def verify(message: bytes, signature: bytes) -> bool:
    try:
        KEY.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def make_entries(n: int) -> list[tuple[int, bytes]]:
    return [
        (i, audit.entry_bytes(i, TIME, "change", {"item": "COUPON", "key": {"pk": f"COUPON#C{i}"}, "n": i}))
        for i in range(n)
    ]


def make_heads(entries, sizes, log_id=LOG, key=KEY) -> list[SignedHead]:
    levels = merkle.SubtreeLevels([merkle.leaf_hash(data) for _, data in entries])
    return [
        sign_head(TreeHead(log_id, size, 1_700_000_000_000 + size, levels.root(size)), lambda m: sign(m, key))
        for size in sizes
    ]


def check(entries, heads, **kwargs):
    return verify_log(entries, heads, log_id=LOG, verify=verify, **kwargs)


# --- entries ------------------------------------------------------------------------------------------


def test_an_entrys_bytes_are_sorted_compact_utf8_json_an_independent_encoder_reproduces():
    data = audit.entry_bytes(7, TIME, "api_call", {"route": "POST /v1/redemptions", "b": [1, None, True], "名": "券"})
    assert data == (
        '{"fields":{"b":[1,null,true],"route":"POST /v1/redemptions","名":"券"},"kind":"api_call",'
        '"seq":7,"time":"2025-03-01T10:00:00.000000Z"}'
    ).encode()
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert audit.decode(data)["seq"] == 7


def test_keys_sort_by_utf16_code_units_as_rfc_8785_does():
    # U+FF61 sorts before U+1F600 by code point, after it by UTF-16 (a surrogate pair starts 0xD83D).
    data = audit.canonical({"\uff61": 1, "\U0001f600": 2})
    assert data == '{"\U0001f600":2,"\uff61":1}'.encode()


@pytest.mark.parametrize(
    "fields",
    [{"amount": 1.5}, {"amount": 2**53}, {"x": {1: "a"}}, {"d": Decimal("1")}, {"s": "\ud800"}, {"t": (1, b"x")}],
)
def test_what_the_canonical_encoding_cannot_carry_is_refused(fields):
    with pytest.raises(audit.InvalidEntry):
        audit.entry_bytes(0, TIME, "change", fields)


@pytest.mark.parametrize(
    "data",
    [
        b'{"fields":{},"kind":"change","seq":0,"time":"t"} ',  # whitespace
        b'{"kind":"change","fields":{},"seq":0,"time":"t"}',  # unsorted
        b'{"fields":{"a":1.0},"kind":"change","seq":0,"time":"t"}',  # a float
        b'{"fields":{},"kind":"other","seq":0,"time":"t"}',  # not a kind
        b'{"fields":{},"kind":"change","seq":0}',  # no time
        b'{"fields":{"a":"\\u00e9"},"kind":"change","seq":0,"time":"t"}',  # escaped, not UTF-8
        b"[1]",
    ],
)
def test_bytes_the_writer_never_writes_do_not_decode_as_an_entry(data):
    with pytest.raises(audit.InvalidEntry):
        audit.decode(data)


# --- redaction ----------------------------------------------------------------------------------------


def test_an_api_key_changes_hash_is_recorded_as_changed_never_its_value():
    old = {"pk": "APIKEY#k1", "sk": "APIKEY", "secret_hash": "aa" * 32, "principal": "admin"}
    new = {**old, "secret_hash": "bb" * 32, "revoked_at": TIME}
    fields = audit.changes(audit.item_kind(new), old, new)
    assert fields == {
        "item": "APIKEY",
        "key": {"pk": "APIKEY#k1", "sk": "APIKEY"},
        "changes": {
            "revoked_at": {"new": TIME},
            "secret_hash": {"old": audit.REDACTED, "new": audit.REDACTED},
        },
    }
    assert "aa" * 32 not in audit.entry_bytes(0, TIME, "change", fields).decode()


def test_secrets_nested_in_an_api_call_or_a_map_are_redacted_at_any_depth_and_any_case():
    call = {"headers": {"X-Api-Key": "ck_live_123"}, "body": {"code": "C1", "qr_token": "t", "dynamic_code": "123456"}}
    assert audit.redact(call) == {
        "headers": {"X-Api-Key": audit.REDACTED},
        "body": {"code": "C1", "qr_token": audit.REDACTED, "dynamic_code": audit.REDACTED},
    }
    assert audit.changes("X", None, {"pk": "X#1", "m": {"otpauth_uri": "otpauth://..."}})["changes"] == {
        "pk": {"new": "X#1"},  # an inserted item: every attribute is new
        "m": {"new": {"otpauth_uri": audit.REDACTED}},
    }


def test_the_redaction_list_names_the_api_key_header_the_auth_code_reads():
    assert auth.HEADER.lower() in audit.REDACTED_NAMES


def test_an_added_a_removed_and_a_nulled_attribute_stay_distinct_and_numbers_are_plain():
    old = {"pk": "C#1", "a": 1, "b": None, "gone": "x", "same": Decimal("5")}
    new = {"pk": "C#1", "a": Decimal("2"), "b": "now", "c": None, "same": 5}
    assert audit.changes("C", old, new)["changes"] == {
        "a": {"old": 1, "new": 2},
        "b": {"old": None, "new": "now"},
        "c": {"new": None},
        "gone": {"old": "x"},
    }
    assert audit.changes("C", old, None)["key"] == {"pk": "C#1"}  # a deleted item keeps its key


# --- heads --------------------------------------------------------------------------------------------


def test_a_heads_signed_bytes_are_the_documented_layout_and_parse_back():
    head = TreeHead(LOG, 5, 1_700_000_000_123, bytes(range(32)))
    data = head_bytes(head)
    assert data == (
        b"coupons-audit-tree-head/v1\x00" + len(LOG).to_bytes(2, "big") + LOG.encode()
        + (5).to_bytes(8, "big") + (1_700_000_000_123).to_bytes(8, "big") + bytes(range(32))
    )
    assert len(HEAD_PREFIX) == 27
    assert parse_head_bytes(data) == head
    for bad in (data[:-1], data + b"\x00", b"x" + data[1:]):
        with pytest.raises(InvalidHead):
            parse_head_bytes(bad)
    with pytest.raises(InvalidHead):
        head_bytes(TreeHead(LOG, -1, 0, bytes(32)))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**40), st.integers(0, 2**41), st.integers(0, 255), st.sampled_from(["size", "ts", "root", "log"]))
def test_any_one_bit_change_to_a_signed_head_fails_its_signature(size, ts, bit, field):
    signed = sign_head(TreeHead(LOG, size, ts, merkle.leaf_hash(b"x")), sign)
    assert verify_head(signed, verify)
    head = signed.head
    changed = {
        "size": TreeHead(LOG, size ^ (1 << (bit % 40)), ts, head.root),
        "ts": TreeHead(LOG, size, ts ^ (1 << (bit % 40)), head.root),
        "root": TreeHead(LOG, size, ts, bytes([head.root[0] ^ (1 << (bit % 8))]) + head.root[1:]),
        "log": TreeHead(LOG[:-1] + chr(ord(LOG[-1]) ^ (1 << (bit % 5))), size, ts, head.root),
    }[field]
    assert not verify_head(SignedHead(changed, signed.signature), verify)


def test_a_combined_head_over_shard_heads_proves_each_shard_head():
    shards = [TreeHead(f"demo/audit/{i}", 10 * i, 1_700_000_000_000, merkle.leaf_hash(bytes([i]))) for i in range(5)]
    root = shards_root(shards)
    for i, head in enumerate(shards):
        assert verify_shard_head(head, i, 5, shard_proof(shards, i), root)
    forged = TreeHead("demo/audit/2", 21, 1_700_000_000_000, shards[2].root)
    assert not verify_shard_head(forged, 2, 5, shard_proof(shards, 2), root)


# --- the verifier -------------------------------------------------------------------------------------

SIZES = [10, 20, 30, 40]


def test_an_untouched_log_verifies_up_to_its_last_head():
    entries = make_entries(45)  # 5 entries after the last head: not yet signed, not an error
    report = check(entries, make_heads(entries, SIZES))
    assert report.ok, report.problems
    assert (report.entries, report.verified_size) == (45, 40)


def test_a_verifier_that_accepts_everything_fails_these_tests():
    entries = make_entries(40)
    heads = make_heads(entries, SIZES)
    entries[12] = (12, audit.entry_bytes(12, TIME, "change", {"forged": True}))
    assert not check(entries, heads).ok


@pytest.mark.parametrize("strict", [True, False])
def test_an_edited_entry_is_placed_between_the_last_good_head_and_the_first_bad_one(strict):
    entries = make_entries(40)
    heads = make_heads(entries, SIZES)
    entries[27] = (27, audit.entry_bytes(27, TIME, "change", {"item": "COUPON", "n": 2700}))
    report = check(entries, heads, strict=strict)
    (problem,) = report.problems
    assert (problem.what, problem.seq, problem.through, problem.head) == ("entries_differ", 20, 29, 2)
    assert report.verified_size == 20


def test_with_a_head_per_entry_an_edited_entry_is_named_exactly():
    entries = make_entries(12)
    heads = make_heads(entries, range(1, 13))
    entries[7] = (7, entries[7][1].replace(b'"n":7', b'"n":8'))
    report = check(entries, heads)
    assert report.first_bad_seq == 7 and report.problems[0].through == 7


def test_a_deleted_entry_is_named_by_its_seq():
    entries = make_entries(40)
    heads = make_heads(entries, SIZES)
    del entries[13]
    report = check(entries, heads)
    assert [(p.what, p.seq) for p in report.problems] == [("missing", 13)]
    assert report.verified_size == 10


def test_a_log_cut_short_of_its_last_head_names_the_first_missing_seq():
    entries = make_entries(40)
    report = check(entries[:33], make_heads(entries, SIZES))
    assert [(p.what, p.seq, p.head) for p in report.problems] == [("missing", 33, None)]


def test_reordered_entries_are_named_by_the_first_seq_out_of_place():
    entries = make_entries(40)
    heads = make_heads(entries, SIZES)
    swapped_rows = entries[:15] + [entries[16], entries[15]] + entries[17:]  # rows listed out of order
    assert check(swapped_rows, heads).first_bad_seq == 15
    swapped_bytes = list(entries)  # the rows' keys kept, their contents swapped
    swapped_bytes[15], swapped_bytes[16] = (15, entries[16][1]), (16, entries[15][1])
    report = check(swapped_bytes, heads)
    assert [(p.what, p.seq) for p in report.problems] == [("seq_mismatch", 15)]


def test_an_inserted_entry_is_named_by_its_seq():
    entries = make_entries(40)
    heads = make_heads(entries, SIZES)
    inserted = entries[:22] + [(21, audit.entry_bytes(21, TIME, "change", {"extra": 1}))] + entries[22:]
    report = check(inserted, heads)
    assert [(p.what, p.seq) for p in report.problems] == [("out_of_order", 21)]
    renumbered = entries[:22] + [(22, audit.entry_bytes(22, TIME, "change", {"extra": 1}))] + [
        (seq + 1, data) for seq, data in entries[22:]
    ]
    # Renumbered rows whose bytes still say their old seq: the first of them is named.
    assert check(renumbered, heads).first_bad_seq == 23


def test_a_head_with_a_bad_signature_is_named_and_the_rest_still_verify():
    entries = make_entries(40)
    heads = make_heads(entries, SIZES)
    heads[1] = make_heads(entries, [20], key=OTHER_KEY)[0]
    heads[2] = SignedHead(heads[2].head, heads[2].signature[:-1] + bytes([heads[2].signature[-1] ^ 1]))
    report = check(entries, heads)
    assert [(p.what, p.head) for p in report.problems] == [("bad_signature", 1), ("bad_signature", 2)]
    assert report.first_bad_seq is None and report.verified_size == 40


def test_a_signed_head_inconsistent_with_the_one_before_is_named():
    entries = make_entries(40)
    good = make_heads(entries, SIZES)
    forked = sign_head(TreeHead(LOG, 20, good[1].head.timestamp_ms + 1, merkle.leaf_hash(b"fork")), sign)
    backwards = sign_head(TreeHead(LOG, 15, good[1].head.timestamp_ms + 2, good[0].head.root), sign)
    report = check(entries, [good[0], good[1], forked, backwards, good[2], good[3]])
    assert [(p.what, p.head) for p in report.problems] == [("inconsistent_head", 2), ("inconsistent_head", 3)]


def test_a_signed_head_whose_root_a_later_head_contradicts_is_named_not_the_entries():
    entries = make_entries(40)
    heads = make_heads(entries, SIZES)
    heads[1] = sign_head(TreeHead(LOG, 20, heads[1].head.timestamp_ms, merkle.leaf_hash(b"other")), sign)
    report = check(entries, heads)
    assert [(p.what, p.head, p.seq) for p in report.problems] == [("inconsistent_head", 1, None)]
    assert report.verified_size == 40


def test_a_head_of_another_log_is_refused():
    entries = make_entries(20)
    report = check(entries, make_heads(entries, [10], log_id="demo/audit/1"))
    assert [(p.what, p.head) for p in report.problems] == [("wrong_log", 0)]


def test_an_entrys_inclusion_proof_verifies_and_a_forged_one_is_named_by_its_seq():
    entries = make_entries(40)
    levels = merkle.SubtreeLevels([merkle.leaf_hash(data) for _, data in entries])
    (head,) = make_heads(entries, [37])
    seq, data = entries[21]
    proof = levels.inclusion_proof(21, 37)
    assert verify_entry(seq, data, proof, head, log_id=LOG, verify=verify) is None
    forged = proof[:2] + [merkle.leaf_hash(b"forged")] + proof[3:]
    assert verify_entry(seq, data, forged, head, log_id=LOG, verify=verify).seq == 21
    assert verify_entry(22, entries[22][1], proof, head, log_id=LOG, verify=verify).what == "bad_proof"
    assert verify_entry(seq, data, proof, SignedHead(head.head, b"\x00"), log_id=LOG, verify=verify).what == "bad_signature"


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 60), st.data())
def test_any_one_bit_change_to_any_entry_is_found_at_or_before_it(n, data):
    entries = make_entries(n)
    heads = make_heads(entries, sorted(set(data.draw(st.lists(st.integers(1, n), min_size=1, max_size=6))) | {n}))
    seq = data.draw(st.integers(0, n - 1), label="seq")
    raw = entries[seq][1]
    bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    entries[seq] = (seq, raw[: bit // 8] + bytes([raw[bit // 8] ^ (1 << (bit % 8))]) + raw[bit // 8 + 1 :])
    report = check(entries, heads, strict=data.draw(st.booleans(), label="strict"))
    assert not report.ok
    assert report.first_bad_seq is not None and report.first_bad_seq <= seq
    for problem in report.problems:
        assert problem.through is None or problem.through >= seq
