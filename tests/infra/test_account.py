"""The account stack: API Gateway's CloudWatch role, set once per account and region for every tenant."""

from __future__ import annotations

import pytest

from tests.infra.conftest import Synthesized, only, resources

pytestmark = pytest.mark.xdist_group("infra")


def test_the_account_stack_sets_api_gateway_s_cloudwatch_role_and_keeps_it_when_deleted(
    synthesized: Synthesized,
):
    template = synthesized.account
    _, account = only(template, "AWS::ApiGateway::Account")
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert account["DeletionPolicy"] == "Retain"
    role = template["Resources"][role_id]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in str(role["ManagedPolicyArns"])


def test_no_tenant_stack_sets_the_account_wide_api_gateway_role(template: dict):
    # A tenant owning it would break every other tenant's stage when it is deleted.
    assert resources(template, "AWS::ApiGateway::Account") == {}
