"""API keys: admin-only, stored hashed, shown once, revocable; the first one by command."""

import json

from coupons.domain.api_keys import hash_key
from tests.integration.test_api_plumbing import assert_problem


def test_a_created_key_works_and_is_stored_only_as_its_hash(api, keys):
    answer = api.call("POST", "/v1/api-keys", api_key=keys["admin"], body={"principal": "issuer:brand-z"})
    assert answer.status == 201
    plain = answer.json["api_key"]
    stored = str(api.items())
    assert plain not in stored and hash_key(plain) in stored
    assert api.call("GET", "/v1/campaigns", api_key=plain).status == 200


def test_only_an_admin_creates_or_revokes_keys(api, keys):
    for who in ("issuer:brand-a", "merchant:m-001"):
        answer = api.call("POST", "/v1/api-keys", api_key=keys[who], body={"principal": "admin"})
        assert_problem(answer, 403, "forbidden")
        answer = api.call("DELETE", f"/v1/api-keys/{keys['admin'].split('_')[1]}", api_key=keys[who])
        assert_problem(answer, 403, "forbidden")


def test_an_unknown_principal_is_a_400_naming_it(api, keys):
    answer = api.call("POST", "/v1/api-keys", api_key=keys["admin"], body={"principal": "root"})
    assert_problem(answer, 400, "validation_failed", field="principal")


def test_revoking_an_unknown_key_is_404(api, keys):
    answer = api.call("DELETE", "/v1/api-keys/0123456789ABCDEF", api_key=keys["admin"])
    assert_problem(answer, 404, "api_key_not_found")


def test_a_key_record_is_readable_without_its_secret(api, keys):
    key_id = keys["merchant:m-001"].split("_")[1]
    record = api.call("GET", f"/v1/api-keys/{key_id}", api_key=keys["admin"]).json
    assert record["principal"] == "merchant:m-001" and "secret_hash" not in record and "api_key" not in record


def test_a_replayed_key_creation_does_not_show_the_key_again(api, keys):
    args = {
        "api_key": keys["admin"],
        "body": {"principal": "merchant:m-9"},
        "headers": {"Idempotency-Key": "k1"},
    }
    first = api.call("POST", "/v1/api-keys", **args)
    again = api.call("POST", "/v1/api-keys", **args)
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == {k: v for k, v in first.json.items() if k != "api_key"}
    assert first.json["api_key"] not in str(api.items())


def test_the_bootstrap_command_makes_a_working_admin_key_from_the_stack_outputs(api):
    import boto3

    from infra.admin_key import create_admin_key, table_of
    from tests.integration.conftest import TABLE

    cfn = boto3.client("cloudformation", region_name="eu-west-1")
    cfn.create_stack(
        StackName="CouponClearing-test",
        TemplateBody=json.dumps(
            {
                "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"MainTableName": {"Value": TABLE}},
            }
        ),
    )
    assert table_of("CouponClearing-test", cfn) == TABLE
    admin = create_admin_key(TABLE, description="first", dynamodb_client=api.ddb)
    answer = api.call("POST", "/v1/api-keys", api_key=admin, body={"principal": "admin"})
    assert answer.status == 201
