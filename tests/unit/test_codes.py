"""Codes are unguessable, typable, and a single typo or swap is caught by arithmetic alone."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coupons.domain import codes
from coupons.domain.codes import CodeChecksumInvalid, display, new_code, normalize
from coupons.domain.ids import CROCKFORD


def test_a_new_code_has_80_random_bits_and_passes_its_own_check():
    code = new_code("TAG0")
    assert len(code) == 4 + codes.RANDOM_CHARS + 1 and codes.RANDOM_CHARS * 5 >= 80
    assert normalize(code) == code


def test_a_code_names_its_campaign_tag_and_prefix():
    code = new_code("T4G5", "XMAS")
    assert (codes.tag_of(code), codes.prefix_of(code)) == ("T4G5", "XMAS")
    assert codes.tag_of(new_code("ABCD")) == "ABCD" and codes.prefix_of(new_code("ABCD")) == ""


def test_codes_do_not_repeat():
    assert len({new_code("TAG0") for _ in range(20_000)}) == 20_000


@settings(max_examples=60)
@given(st.text(alphabet=CROCKFORD, min_size=0, max_size=6))
def test_every_single_substitution_and_adjacent_transposition_is_rejected(prefix):
    code = new_code(codes.new_tag(), prefix)
    for i, original in enumerate(code):
        for other in CROCKFORD:
            if other != original:
                with pytest.raises(CodeChecksumInvalid):
                    normalize(code[:i] + other + code[i + 1 :])
    for i in range(len(code) - 1):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            with pytest.raises(CodeChecksumInvalid):
                normalize(swapped)


def test_typed_forms_are_accepted_case_hyphens_and_look_alike_letters():
    code = new_code("ZZ99", "XMAS")
    assert normalize(display(code).lower()) == code
    assert normalize(" ".join(code)) == code
    with_zero = code.replace("0", "O")
    assert normalize(with_zero) == code


@pytest.mark.parametrize("bad", ["", "SHORT", "U" * 17, "!" * 17, "A" * 100])
def test_garbage_is_refused_without_a_read(bad):
    with pytest.raises(Exception) as refused:
        normalize(bad)
    assert refused.value.field == "code"


def test_a_derived_code_is_a_valid_code_of_its_campaign_and_the_same_for_the_same_material():
    secret = b"s" * 32
    code = codes.derived_code(secret, "admin/K|idem-1|u-1", "AB12", "XMAS")
    assert codes.normalize(code) == code
    assert (codes.prefix_of(code), codes.tag_of(code)) == ("XMAS", "AB12")
    assert codes.derived_code(secret, "admin/K|idem-1|u-1", "AB12", "XMAS") == code
    others = {
        codes.derived_code(secret, "admin/K|idem-1|u-2", "AB12", "XMAS"),
        codes.derived_code(secret, "admin/K|idem-2|u-1", "AB12", "XMAS"),
        codes.derived_code(b"t" * 32, "admin/K|idem-1|u-1", "AB12", "XMAS"),
    }
    assert code not in others and len(others) == 3
