"""The served OpenAPI document: valid, and saying what the API answers (statuses, schemas, auth, ids)."""

from openapi_spec_validator import validate


def served(api):
    answer = api.call("GET", "/v1/openapi.json")
    assert answer.status == 200
    return answer.json


def operations(doc):
    for path, ops in doc["paths"].items():
        for method, operation in ops.items():
            yield path, method, operation


def test_the_served_document_passes_openapi_spec_validator(api):
    validate(served(api))


def test_every_operation_has_a_short_stable_id_a_success_schema_and_problem_answers(api):
    doc = served(api)
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
    assert all("_" not in i and len(i) <= 30 for i in ids), ids
    for path, method, op in operations(doc):
        successes = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert successes, (method, path)
        for status, response in successes.items():
            if status != "204":
                assert response["content"]["application/json"]["schema"], (method, path, status)
        for status in ("400", "401", "403", "404", "405", "409", "422", "500"):
            problem = op["responses"][status]["content"]["application/problem+json"]["schema"]
            assert problem == {"$ref": "#/components/schemas/Problem"}
        assert op["security"] == [{"apiKey": []}]


def test_the_statuses_the_issue_named_are_documented_as_answered(api):
    doc = served(api)
    status_of = {op["operationId"]: set(op["responses"]) for _, _, op in operations(doc)}
    for operation, status in [
        ("issueCoupons", "201"),
        ("redeemCoupon", "201"),
        ("reverseRedemption", "201"),
        ("createFundingRule", "201"),
        ("createQrToken", "201"),
        ("provisionDynamicCode", "201"),
        ("startSettlementRun", "202"),
        ("revokeApiKey", "204"),
    ]:
        assert status in status_of[operation], operation
    assert "verification_failed" in doc["paths"]["/v1/redemptions"]["post"]["responses"]["422"]["description"]
    statement = doc["paths"]["/v1/settlement-runs/{run_id}/statements/{party}"]["get"]["responses"]["200"]
    assert set(statement["content"]) == {"application/json", "text/csv"}
    redeem = doc["paths"]["/v1/redemptions"]["post"]
    assert "Idempotent-Replayed" in redeem["responses"]["201"]["headers"]
    assert (
        doc["paths"]["/v1/redemptions/{redemption_id}/reversals"]["post"]["requestBody"]["required"] is False
    )
