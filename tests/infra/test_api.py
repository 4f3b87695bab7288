"""The REST API proxies every path and method to the API function, on a traced, logged `prod` stage."""

from __future__ import annotations

import json

import pytest

from infra.tenants import load_tenant
from tests.infra.conftest import only, resources

pytestmark = pytest.mark.xdist_group("infra")


def _paths(template: dict) -> dict[str, str]:
    """Each API Gateway resource's full path, by logical id (the root is the RestApi's)."""
    found = resources(template, "AWS::ApiGateway::Resource")

    def path(logical_id: str) -> str:
        props = found[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = "" if "Fn::GetAtt" in parent else path(parent["Ref"])
        return f"{prefix}/{props['PathPart']}"

    return {logical_id: path(logical_id) for logical_id in found}


def _methods(template: dict) -> set[tuple[str, str]]:
    paths = _paths(template)
    return {
        (paths.get(m["Properties"]["ResourceId"].get("Ref"), "/"), m["Properties"]["HttpMethod"])
        for m in resources(template, "AWS::ApiGateway::Method").values()
    }


def test_the_root_and_every_path_go_to_the_api_function_as_lambda_proxy(template: dict):
    function_id = template["Outputs"]["ApiFunctionName"]["Value"]["Ref"]
    methods = resources(template, "AWS::ApiGateway::Method").values()
    assert "/{proxy+}" in _paths(template).values()
    # Every resource forwards any method (a matched resource never falls back to {proxy+}); a throttled
    # route's resource also has its own method, which the stage's method settings address.
    assert {(path, "ANY") for path in ["/", *_paths(template).values()]} <= _methods(template)
    for method in methods:
        props = method["Properties"]
        # Authentication is the function's (hashed API keys in DynamoDB), see the acknowledged nag rules.
        assert props["AuthorizationType"] == "NONE"
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["IntegrationHttpMethod"] == "POST"
        assert {"Fn::GetAtt": [function_id, "Arn"]} in integration["Uri"]["Fn::Join"][1]


def test_the_prod_stage_is_traced_access_logged_and_measured(template: dict):
    _, stage = only(template, "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["StageName"] == "prod"
    assert props["TracingEnabled"] is True
    assert props["AccessLogSetting"]["DestinationArn"]
    assert props["AccessLogSetting"]["Format"]
    # The stage's settings, and each throttled route's, which replace them for that method.
    assert [s["MetricsEnabled"] for s in props["MethodSettings"]] == [True] * len(props["MethodSettings"])
    assert props["MethodSettings"][0]["ResourcePath"] == "/*"


def test_api_gateway_has_no_keys_usage_plans_or_authorizers_of_its_own(template: dict):
    for kind in ("AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::Authorizer"):
        assert resources(template, kind) == {}


def test_only_this_api_may_invoke_the_function(template: dict):
    api_function = template["Outputs"]["ApiFunctionName"]["Value"]["Ref"]
    permissions = [
        p for p in resources(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [api_function, "Arn"]}
    ]  # fmt: skip
    assert permissions
    for permission in permissions:
        props = permission["Properties"]
        if props["FunctionName"]["Fn::GetAtt"][0].startswith("ReconciliationStarter"):
            # The one other function with a resource policy: the statement-arrived rule invokes it.
            assert props["Principal"] == "events.amazonaws.com"
            assert props["SourceArn"]["Fn::GetAtt"][0].startswith("ReconciliationStatementArrived")
            continue
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert "SourceArn" in props
        # The console's test-invoke permission (a `test-invoke-stage` source) is not granted.
        assert "test-invoke-stage" not in str(props["SourceArn"])


def test_the_stage_throttles_every_route_and_each_route_the_tenant_file_names(tenant: str, template: dict):
    settings = load_tenant(tenant)
    _, stage = only(template, "AWS::ApiGateway::Stage")
    by_path = {s["ResourcePath"]: s for s in stage["Properties"]["MethodSettings"]}
    everything = by_path["/*"]
    assert everything["HttpMethod"] == "*"
    assert everything["ThrottlingRateLimit"] == settings.api_throttle.rate_limit
    assert everything["ThrottlingBurstLimit"] == settings.api_throttle.burst_limit
    assert settings.api_route_throttles
    for route, limit in settings.api_route_throttles.items():
        method, path = route.split(" ", 1)
        assert (path, method) in _methods(template)
        setting = by_path["/" + path.replace("/", "~1")]
        assert setting["HttpMethod"] == method
        assert (setting["ThrottlingRateLimit"], setting["ThrottlingBurstLimit"]) == (
            limit.rate_limit,
            limit.burst_limit,
        )


def test_execution_logs_of_errors_only_without_bodies_to_an_encrypted_group_of_the_stage(template: dict):
    _, stage = only(template, "AWS::ApiGateway::Stage")
    everything = next(s for s in stage["Properties"]["MethodSettings"] if s["ResourcePath"] == "/*")
    assert everything["LoggingLevel"] == "ERROR"
    assert everything["DataTraceEnabled"] is False
    groups = [g["Properties"] for g in resources(template, "AWS::Logs::LogGroup").values()]
    named = [g for g in groups if "API-Gateway-Execution-Logs_" in json.dumps(g.get("LogGroupName"))]
    assert len(named) == 1 and "KmsKeyId" in named[0]
    assert json.dumps(named[0]["LogGroupName"]).endswith('"/prod"]]}')


def test_a_web_acl_on_the_stage_rate_limits_each_ip_then_applies_aws_common_rules(
    tenant: str, template: dict
):
    acl_id, acl = only(template, "AWS::WAFv2::WebACL")
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL"
    assert props["DefaultAction"] == {"Allow": {}}
    rate, common = sorted(props["Rules"], key=lambda r: r["Priority"])
    statement = rate["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP"
    assert statement["Limit"] == load_tenant(tenant).waf_rate_limit_per_ip
    assert rate["Action"] == {"Block": {}}
    managed = common["Statement"]["ManagedRuleGroupStatement"]
    assert (managed["VendorName"], managed["Name"]) == ("AWS", "AWSManagedRulesCommonRuleSet")
    _, association = only(template, "AWS::WAFv2::WebACLAssociation")
    stage_id, _ = only(template, "AWS::ApiGateway::Stage")
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert stage_id in json.dumps(association["Properties"]["ResourceArn"])
    assert {"Ref": stage_id} in association["Properties"]["ResourceArn"]["Fn::Join"][1]
    _, logging = only(template, "AWS::WAFv2::LoggingConfiguration")
    assert logging["Properties"]["ResourceArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
