"""Stream images are decoded by PynamoDB's raw map (coupons.data.models.base.plain_image): it must agree
with boto3's reading of the same attribute values, integers as ints; money attributes refuse floats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.data.models.base import Integer, plain_image
from tests.dynamo_json import from_item, to_item

values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**15), max_value=10**15) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(st.text(min_size=1, max_size=5), values, max_size=4))
def test_an_image_decodes_as_boto3_reads_it(record):
    image = to_item(record)
    assert plain_image(image) == from_item(image)


@pytest.mark.parametrize("value", [1.5, 2.0, True, "7"])
def test_an_integer_attribute_refuses_anything_but_an_int(value):
    with pytest.raises(TypeError):
        Integer().serialize(value)
