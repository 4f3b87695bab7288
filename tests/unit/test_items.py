from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from coupons.data.items import from_attribute, to_attribute

values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**20), max_value=10**20) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@given(values)
def test_values_round_trip(value):
    assert from_attribute(to_attribute(value)) == value


@given(values)
def test_the_encoding_is_the_one_boto3_uses(value):
    # Our serializer stands in for boto3's (to keep boto3 out of the cold start): it must agree.
    assert to_attribute(value) == TypeSerializer().serialize(value)
    plain = TypeDeserializer().deserialize(to_attribute(value))
    assert from_attribute(to_attribute(value)) == _ints(plain)


def _ints(v):
    if isinstance(v, Decimal):
        return int(v)
    if isinstance(v, list):
        return [_ints(x) for x in v]
    if isinstance(v, dict):
        return {k: _ints(x) for k, x in v.items()}
    return v


def test_floats_are_never_stored():
    with pytest.raises(TypeError):
        to_attribute(1.5)
