"""Sealed redemption-hold ids (coupons.domain.hold_ids): what a one-request capture or void needs of its
hold travels in the hold's id, unreadable and unforgeable (docs/redemption.md "Toward one request")."""

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from coupons.domain import hold_ids
from coupons.domain.hold_ids import HoldFacts
from coupons.domain.signing import b64d

KEY = b"k" * 32
FACTS = HoldFacts(
    code="GIFT-7Q2M-XK4P",
    gift_card=True,
    currency="CNY",
    held_amount=6000,
    hold_expires_at="2026-12-01T22:30:00.123456Z",
)


def test_a_sealed_hold_id_gives_back_the_facts_it_was_minted_with():
    rid = hold_ids.mint(KEY, FACTS, now_ms=1_764_000_000_000)
    assert rid.startswith("hld_") and hold_ids.read(KEY, rid) == FACTS


def test_a_sealed_hold_id_is_url_safe_and_short_enough_for_urls_journals_and_statements():
    rid = hold_ids.mint(KEY, FACTS)
    assert len(rid) <= hold_ids.MAX_CHARS and all(c.isalnum() or c in "_-" for c in rid)
    assert len(rid) <= 76  # a 14-character code


def test_the_code_cannot_be_read_from_the_id():
    rid = hold_ids.mint(KEY, FACTS)
    sealed = b64d(rid.removeprefix("hld_"))
    assert FACTS.code.encode() not in sealed and FACTS.code not in rid
    assert b"CNY" not in sealed  # nothing of the plaintext shows


def test_two_holds_with_the_same_facts_get_different_ids():
    assert hold_ids.mint(KEY, FACTS) != hold_ids.mint(KEY, FACTS)


def test_an_id_changed_in_any_character_reads_as_no_sealed_hold():
    rid = hold_ids.mint(KEY, FACTS)
    for i in range(len("hld_"), len(rid)):
        changed = rid[:i] + ("A" if rid[i] != "A" else "B") + rid[i + 1 :]
        assert hold_ids.read(KEY, changed) is None, i


def test_other_ids_another_key_and_junk_read_as_no_sealed_hold():
    rid = hold_ids.mint(KEY, FACTS)
    assert hold_ids.read(b"x" * 32, rid) is None
    for other in ("rdm_01JABCDEFGHJKMNPQRSTVWXYZ0", "hld_", "hld_!!", "hld_" + "A" * 500, "", "hld_AAAA"):
        assert hold_ids.read(KEY, other) is None, other


@given(
    code=st.text(min_size=1, max_size=64).filter(lambda c: "\x00" not in c),
    gift=st.booleans(),
    currency=st.sampled_from(["CNY", "EUR", "USD", "JPY"]),
    held=st.integers(min_value=0, max_value=10**12),
    expires=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2200, 1, 1)),
)
def test_any_hold_facts_round_trip(code, gift, currency, held, expires):
    facts = HoldFacts(
        code=code,
        gift_card=gift,
        currency=currency,
        held_amount=held,
        hold_expires_at=expires.replace(tzinfo=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
    )
    assert hold_ids.read(KEY, hold_ids.mint(KEY, facts)) == facts


def test_a_single_use_holds_coupon_type_travels_in_its_id():
    for kind in ("FIXED", "PERCENT", "THRESHOLD"):
        facts = HoldFacts(
            "FIXD-7Q2M-XK4P", False, "CNY", 1000, "2026-12-01T22:30:00.000000Z", coupon_type=kind
        )
        assert hold_ids.read(KEY, hold_ids.mint(KEY, facts)).coupon_type == kind
    gift = hold_ids.read(KEY, hold_ids.mint(KEY, FACTS))
    assert (gift.gift_card, gift.coupon_type) == (True, "GIFT_CARD")
