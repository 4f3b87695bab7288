"""The REST API proxies every path and method to the API function, on a traced, logged `prod` stage."""

from __future__ import annotations

import pytest

from tests.infra.conftest import only, resources

pytestmark = pytest.mark.xdist_group("infra")


def test_the_root_and_every_path_go_to_the_api_function_as_lambda_proxy(template: dict):
    function_id = template["Outputs"]["ApiFunctionName"]["Value"]["Ref"]
    methods = resources(template, "AWS::ApiGateway::Method").values()
    _, proxy = only(template, "AWS::ApiGateway::Resource")
    assert proxy["Properties"]["PathPart"] == "{proxy+}"
    assert len(methods) == 2
    for method in methods:
        props = method["Properties"]
        assert props["HttpMethod"] == "ANY"
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
    assert [s["MetricsEnabled"] for s in props["MethodSettings"]] == [True]


def test_api_gateway_has_no_keys_usage_plans_or_authorizers_of_its_own(template: dict):
    for kind in ("AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::Authorizer"):
        assert resources(template, kind) == {}


def test_only_this_api_may_invoke_the_function(template: dict):
    permissions = resources(template, "AWS::Lambda::Permission").values()
    assert permissions
    for permission in permissions:
        props = permission["Properties"]
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert "SourceArn" in props
        # The console's test-invoke permission (a `test-invoke-stage` source) is not granted.
        assert "test-invoke-stage" not in str(props["SourceArn"])
