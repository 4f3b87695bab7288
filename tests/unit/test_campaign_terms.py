"""Every field of a campaign is checked strictly, and each refusal names its field."""

import pytest
from pydantic import ValidationError

from coupons.domain.campaigns import CampaignTerms, check_terms, new_campaign, owning_brand
from coupons.domain.errors import Forbidden, InvalidField
from coupons.domain.principals import Principal, Role

ADMIN = Principal(Role.ADMIN)
ISSUER = Principal(Role.ISSUER, "brand-a")

VALID = {
    "FIXED": {"type": "FIXED", "amount": 1000, "min_order": 5000},
    "PERCENT": {"type": "PERCENT", "percent_bps": 1500, "max_discount": 3000},
    "THRESHOLD": {"type": "THRESHOLD", "amount": 2000, "min_order": 10000},
    "GIFT_CARD": {"type": "GIFT_CARD", "amount": 50000},
}


def terms(kind="FIXED", **changes):
    body = {"name": "n", "brand_id": "brand-a", "currency": "CNY", "valid_days": 30, "total_quantity": 10}
    body.update(VALID[kind])
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def refused_field(body) -> str:
    try:
        check_terms(CampaignTerms.model_validate(body))
    except ValidationError as error:
        return ".".join(str(p) for p in error.errors()[0]["loc"])
    except InvalidField as error:
        return error.field
    raise AssertionError(f"accepted: {body}")


@pytest.mark.parametrize("kind", sorted(VALID))
def test_each_type_with_its_terms_is_accepted(kind):
    check_terms(CampaignTerms.model_validate(terms(kind)))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (terms("PERCENT", percent_bps=20000), "percent_bps"),
        (terms("PERCENT", percent_bps=0), "percent_bps"),
        (terms("PERCENT", percent_bps=15.5), "percent_bps"),
        (terms(amount=-1), "amount"),
        (terms(amount=0), "amount"),
        (terms(amount=10.5), "amount"),
        (terms(amount="1000"), "amount"),
        (terms(amount=True), "amount"),
        (terms(amount=10**14), "amount"),
        (terms(min_order=-5), "min_order"),
        (terms(currency="XYZ"), "currency"),
        (terms(currency="cny"), "currency"),
        (terms(name=""), "name"),
        (terms(name="x" * 201), "name"),
        (terms(type="BOGO"), "type"),
        (terms(total_quantity=0), "total_quantity"),
        (terms(total_quantity=None), "total_quantity"),
        (terms(per_user_limit=0), "per_user_limit"),
        (terms(budget=0), "budget"),
        (terms(brand_id="bad id!"), "brand_id"),
        (terms(eligible_merchants=[]), "eligible_merchants"),
        (terms(eligible_merchants=["m-1", "m-1"]), "eligible_merchants"),
        (terms(verification_methods=["FACE_ID"]), "verification_methods.0"),
        (terms(verification_methods=[]), "verification_methods"),
        (terms(settlement_cycle="T+31"), "settlement_cycle"),
        (terms(settlement_cycle="weekly"), "settlement_cycle"),
        (terms(valid_days=0), "valid_days"),
        (terms(valid_from="2026-12-01T00:00:00"), "valid_from"),  # no time zone
        (terms(colour="red"), "colour"),  # unknown fields are refused, not ignored
    ],
)
def test_a_field_out_of_its_schema_is_refused_by_name(body, field):
    assert refused_field(body) == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (terms("FIXED", amount=None), "amount"),
        (terms("FIXED", percent_bps=100), "percent_bps"),
        (terms("PERCENT", max_discount=None), "max_discount"),
        (terms("PERCENT", amount=100), "amount"),
        (terms("THRESHOLD", min_order=None), "min_order"),
        (terms("THRESHOLD", min_order=1000), "min_order"),  # below the amount it takes off
        (terms("GIFT_CARD", max_discount=5), "max_discount"),
        (terms(valid_days=None), "valid_until"),
        (terms(valid_until="2027-01-01T00:00:00Z"), "valid_days"),
        (
            terms(valid_days=None, valid_from="2027-01-02T00:00:00Z", valid_until="2027-01-01T00:00:00Z"),
            "valid_until",
        ),
        (terms(valid_from="2027-01-01T00:00:00Z"), "valid_from"),
        (
            terms(issuance_starts_at="2027-01-02T00:00:00Z", issuance_ends_at="2027-01-01T00:00:00Z"),
            "issuance_ends_at",
        ),
        (terms(budget=999), "budget"),  # less than one coupon's face value
        (terms("PERCENT", budget=2999), "budget"),  # a PERCENT coupon's face value is max_discount
    ],
)
def test_rules_across_fields_name_the_field_they_refuse(body, field):
    assert refused_field(body) == field


def test_times_are_kept_in_utc():
    parsed = CampaignTerms.model_validate(
        terms(valid_days=None, valid_from="2026-12-01T08:00:00+08:00", valid_until="2026-12-31T00:00:00Z")
    )
    assert parsed.model_dump(mode="json")["valid_from"] == "2026-12-01T00:00:00.000000Z"


def test_an_issuer_creates_for_its_own_brand_and_an_admin_must_name_one():
    assert owning_brand(CampaignTerms.model_validate(terms(brand_id=None)), ISSUER) == "brand-a"
    with pytest.raises(Forbidden):
        owning_brand(CampaignTerms.model_validate(terms(brand_id="brand-b")), ISSUER)
    with pytest.raises(InvalidField) as refused:
        owning_brand(CampaignTerms.model_validate(terms(brand_id=None)), ADMIN)
    assert refused.value.field == "brand_id"
    with pytest.raises(Forbidden):
        owning_brand(CampaignTerms.model_validate(terms()), Principal(Role.MERCHANT, "m-1"))


def test_a_new_campaign_starts_as_a_draft_with_its_capacity_and_shards():
    record = new_campaign(CampaignTerms.model_validate(terms("PERCENT", total_quantity=2500)), ADMIN)
    assert record["status"] == "DRAFT"
    assert (record["face_value"], record["capacity"], record["shards"]) == (3000, 2500, 3)
    assert record["campaign_id"].startswith("cmp_")


@pytest.mark.parametrize(
    ("changes", "capacity"),
    [({}, 10), ({"budget": 7000}, 7), ({"budget": 7999}, 7), ({"budget": 10**6}, 10)],
)
def test_the_budget_is_exactly_a_number_of_coupons(changes, capacity):
    # Every coupon of a campaign has the same face value (FIXED: amount 1000 here).
    assert new_campaign(CampaignTerms.model_validate(terms(**changes)), ADMIN)["capacity"] == capacity


@pytest.mark.parametrize(("capacity", "shards"), [(1, 1), (1000, 1), (1001, 2), (10**8, 64)])
def test_shards_follow_the_size_unless_chosen(capacity, shards):
    assert (
        new_campaign(CampaignTerms.model_validate(terms(total_quantity=capacity)), ADMIN)["shards"] == shards
    )
    assert (
        new_campaign(CampaignTerms.model_validate(terms(total_quantity=capacity, shards=8)), ADMIN)["shards"]
        == 8
    )


def test_shard_capacities_sum_to_the_capacity():
    from coupons.domain.campaigns import shard_capacities

    assert shard_capacities({"capacity": 50, "shards": 8}) == [7, 7, 6, 6, 6, 6, 6, 6]
    assert shard_capacities({"capacity": 3, "shards": 8}) == [1, 1, 1, 0, 0, 0, 0, 0]
