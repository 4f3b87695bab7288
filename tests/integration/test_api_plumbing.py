"""What every route shares: authentication, problems, unknown routes, methods, malformed bodies."""

import re

import pytest

from tests.events import load

PROBLEM = "application/problem+json"


def campaign_body(**changes):
    import json

    body = json.loads(load("api/create_campaign")["body"])
    body.update(changes)
    return body


def assert_problem(answer, status, code, field=None):
    assert answer.status == status, answer.raw
    assert answer.content_type == PROBLEM
    body = answer.json
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"].endswith(code) and body["title"]
    if field is not None:
        assert body["field"] == field


@pytest.mark.parametrize(
    "api_key",
    [None, "", "not-a-key", "ck_0123456789ABCDEF_0123456789ABCDEFGHJKMNPQRSTVWXYZ"],
    ids=["missing", "empty", "malformed", "unknown"],
)
def test_a_request_without_a_valid_key_is_401_and_writes_nothing(api, api_key):
    before = api.items()
    answer = api.call("POST", "/v1/campaigns", api_key=api_key, body=campaign_body())
    assert_problem(answer, 401, "unauthenticated")
    assert api.items() == before


def test_a_revoked_key_is_refused(api, keys):
    merchant = keys["merchant:m-001"]
    key_id = merchant.split("_")[1]
    assert api.call("DELETE", f"/v1/api-keys/{key_id}", api_key=keys["admin"]).status == 204
    assert_problem(api.call("GET", "/v1/campaigns/cmp_x", api_key=merchant), 401, "unauthenticated")


def test_a_principal_that_may_not_act_gets_403_and_writes_nothing(api, keys):
    before = api.items()
    answer = api.call("POST", "/v1/campaigns", api_key=keys["merchant:m-001"], body=campaign_body())
    assert_problem(answer, 403, "forbidden")
    assert api.items() == before


def test_an_unknown_route_is_404(api, keys):
    assert_problem(api.call("GET", "/v1/nothing-here", api_key=keys["admin"]), 404, "route_not_found")


def test_a_known_route_with_the_wrong_method_is_405_with_allow(api, keys):
    answer = api.call("PUT", "/v1/campaigns", api_key=keys["admin"], body={})
    assert_problem(answer, 405, "method_not_allowed")
    assert answer.headers["Allow"] == "GET, POST"


def test_malformed_json_is_400_and_writes_nothing(api, keys):
    before = api.items()
    event = load("api/create_campaign_malformed_json")
    answer = api.call("POST", "/v1/campaigns", api_key=keys["admin"], raw_body=event["body"])
    assert_problem(answer, 400, "malformed_json")
    assert api.items() == before


def test_a_validation_error_names_the_field_and_writes_nothing(api, keys):
    before = api.items()
    body = __import__("json").loads(load("api/create_campaign_percent_out_of_range")["body"])
    answer = api.call("POST", "/v1/campaigns", api_key=keys["admin"], body=body)
    assert_problem(answer, 400, "validation_failed", field="percent_bps")
    assert answer.json["errors"][0]["field"] == "percent_bps"
    assert api.items() == before


def test_an_unexpected_failure_is_a_500_problem_not_a_stack_trace(api, keys, monkeypatch):
    import dependencies

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(dependencies, "campaigns", broken)
    answer = api.call("GET", "/v1/campaigns/cmp_x", api_key=keys["admin"])
    assert_problem(answer, 500, "internal_error")
    assert "boom" not in answer.raw


def test_the_openapi_document_is_public_and_lists_every_route(api):
    answer = api.call("GET", "/v1/openapi.json")
    assert answer.status == 200
    doc = answer.json
    assert doc["openapi"].startswith("3.")
    routes = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes >= {
        ("/v1/campaigns", "post"),
        ("/v1/campaigns", "get"),
        ("/v1/campaigns/{campaign_id}", "get"),
        ("/v1/api-keys", "post"),
        ("/v1/api-keys/{key_id}", "get"),
        ("/v1/api-keys/{key_id}", "delete"),
        ("/v1/campaigns/{campaign_id}/activate", "post"),
        ("/v1/campaigns/{campaign_id}/pause", "post"),
        ("/v1/campaigns/{campaign_id}/end", "post"),
        ("/v1/campaigns/{campaign_id}/coupons", "post"),
        ("/v1/coupons/{code}", "get"),
        ("/v1/coupons/{code}/void", "post"),
        ("/v1/coupons/{code}/qr-token", "post"),
        ("/v1/coupons/{code}/dynamic-code", "post"),
        ("/v1/users/{user_id}/coupons", "get"),
        ("/v1/redemptions/quote", "post"),
        ("/v1/redemptions", "post"),
        ("/v1/redemptions/{redemption_id}", "get"),
        ("/v1/redemptions/{redemption_id}/reversals", "get"),
        ("/v1/redemptions/{redemption_id}/reversals", "post"),
        ("/v1/settlement-runs", "post"),
        ("/v1/settlement-runs/{run_id}", "get"),
        ("/v1/settlement-runs/{run_id}/statements/{party}", "get"),
    }
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "name": "x-api-key",
        "in": "header",
    }


def test_every_documented_route_refuses_a_caller_without_a_key(api):
    doc = api.call("GET", "/v1/openapi.json").json
    for path, ops in doc["paths"].items():
        for method in ops:
            concrete = re.sub(r"\{[a-z_]+\}", "x", path)
            answer = api.call(method.upper(), concrete, body={} if method == "post" else None)
            assert answer.status == 401, (method, path)
