import pytest

from coupons.domain import api_keys
from coupons.domain.errors import Forbidden, InvalidField
from coupons.domain.ids import new_id
from coupons.domain.principals import Principal, Role, parse_principal


def test_a_key_is_stored_only_as_a_hash_that_still_verifies_it():
    new = api_keys.generate()
    assert new.plain not in new.secret_hash
    assert api_keys.matches(new.plain, new.secret_hash)
    assert not api_keys.matches(new.plain[:-1] + ("0" if new.plain[-1] != "0" else "1"), new.secret_hash)
    assert api_keys.key_id_of(new.plain) == new.key_id


def test_keys_carry_160_random_bits_and_never_repeat():
    plains = {api_keys.generate().plain for _ in range(2000)}
    assert len(plains) == 2000
    assert len(next(iter(plains)).split("_")[2]) * 5 == 160


@pytest.mark.parametrize(
    "bad", ["", "ck_short", "Bearer x", "ck_0123456789ABCDEF_" + "0" * 31, "ck_" + "I" * 16 + "_" + "0" * 32]
)
def test_a_malformed_key_has_no_key_id(bad):
    assert api_keys.key_id_of(bad) is None


@pytest.mark.parametrize(
    ("text", "principal"),
    [
        ("admin", Principal(Role.ADMIN)),
        ("issuer:brand-a", Principal(Role.ISSUER, "brand-a")),
        ("merchant:m-001", Principal(Role.MERCHANT, "m-001")),
    ],
)
def test_principals_round_trip_through_their_text(text, principal):
    assert parse_principal(text) == principal
    assert str(principal) == text


@pytest.mark.parametrize("bad", ["root", "admin:x", "issuer:", "merchant:bad id", "issuer:" + "x" * 65])
def test_an_unknown_principal_is_refused_naming_the_field(bad):
    with pytest.raises(InvalidField) as refused:
        parse_principal(bad)
    assert refused.value.field == "principal"


def test_a_role_check_refuses_other_roles():
    Principal(Role.ADMIN).require(Role.ADMIN)
    with pytest.raises(Forbidden):
        Principal(Role.MERCHANT, "m").require(Role.ADMIN, Role.ISSUER)


def test_ids_sort_by_creation_time():
    assert new_id("cmp", now_ms=1) < new_id("cmp", now_ms=2) < new_id("cmp", now_ms=10**12)
