"""The local deployer makes what moto's CloudFormation skips but the code reads: each Secrets Manager secret
of the template, valued by its own rules, and the function variables that referred to it.

Deployed into a moto server in this process (as `make local` does): a small hand-written template for
the rules, and the demo tenant's real template for the API function's TENANT_SECRET_ARN."""

from __future__ import annotations

import json
import logging
import string
from pathlib import Path

import pytest

from coupons.data.secrets import ENV_VAR as TENANT_SECRET_ENV
from infra.local import deploy
from infra.local.runtime import LocalRuntime
from tests.integration.local_moto import local_moto

pytestmark = pytest.mark.xdist_group("local-runtime")

REGION = "eu-west-1"
SECRET = "AWS::SecretsManager::Secret"
ALNUM = set(string.ascii_letters + string.digits)


@pytest.fixture(scope="module")
def moto():
    with local_moto(REGION) as server:
        yield server


def _function(name: str, variables: dict) -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"S3Bucket": "local-assets", "S3Key": "fn.zip"},
            "Handler": "handler.lambda_handler",
            "Runtime": "python3.11",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Environment": {"Variables": variables},
        },
    }


RULES_TEMPLATE = {
    "Resources": {
        "Key": {
            "Type": "AWS::KMS::Key",
            "Properties": {"KeyPolicy": {"Version": "2012-10-17", "Statement": []}},
        },
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": []}}},
        "Generated": {
            "Type": SECRET,
            "Properties": {
                "Description": "generated under rules",
                "KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]},
                "GenerateSecretString": {
                    "PasswordLength": 40,
                    "ExcludePunctuation": True,
                    "ExcludeCharacters": "aeiouAEIOU0",
                },
            },
        },
        "Templated": {
            "Type": SECRET,
            "Properties": {
                "GenerateSecretString": {
                    "SecretStringTemplate": '{"user": "app"}',
                    "GenerateStringKey": "password",
                    "PasswordLength": 20,
                },
            },
        },
        "Literal": {
            "Type": SECRET,
            "Properties": {
                "Name": {"Fn::Sub": "${AWS::StackName}-literal"},
                "SecretString": {"Fn::Join": ["-", ["value", {"Ref": "AWS::Region"}]]},
            },
        },
        "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
        "Fn": _function(
            "Fn",
            {
                "PLAIN": "kept by moto",
                "GENERATED_ARN": {"Ref": "Generated"},
                "TEMPLATED_ARN": {"Ref": "Templated"},
                "JOINED": {"Fn::Join": ["#", [{"Ref": "Literal"}, "suffix"]]},
                "ALARM": {"Ref": "Alarm"},  # skipped and not made locally: named in a warning
            },
        ),
    }
}


@pytest.fixture(scope="module")
def rules(moto, tmp_path_factory):
    code = tmp_path_factory.mktemp("rules-code")
    synth = deploy.Synthesized("LocalSecretRules", RULES_TEMPLATE, code, {"fn.zip": code})
    with pytest.MonkeyPatch.context() as patch:
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append
        logging.getLogger("local.deploy").addHandler(handler)
        patch.setattr(logging.getLogger("local.deploy"), "level", logging.INFO)
        try:
            deployment = deploy.deploy(synth, region=REGION)
        finally:
            logging.getLogger("local.deploy").removeHandler(handler)
    return deployment, [r.getMessage() for r in records]


def _clients():
    import boto3

    return boto3.client("secretsmanager", region_name=REGION), boto3.client("lambda", region_name=REGION)


def _environment(deployment, logical_id: str) -> dict[str, str]:
    _, lam = _clients()
    name = deployment.physical[logical_id]
    return lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]


def test_every_skipped_secret_is_created_and_known_to_the_deployment(rules):
    deployment, _ = rules
    secrets_by_id = deployment.of_type(SECRET)
    assert set(secrets_by_id) == {"Generated", "Templated", "Literal"}
    sm, _ = _clients()
    for logical_id, arn in secrets_by_id.items():
        assert sm.describe_secret(SecretId=arn)["ARN"] == arn, logical_id


def test_a_generated_value_honours_length_and_exclusions_and_the_key_and_description(rules):
    deployment, _ = rules
    sm, _ = _clients()
    arn = deployment.of_type(SECRET)["Generated"]
    value = sm.get_secret_value(SecretId=arn)["SecretString"]
    assert len(value) == 40
    assert set(value) <= ALNUM - set("aeiouAEIOU0")
    described = sm.describe_secret(SecretId=arn)
    assert described["Description"] == "generated under rules"
    assert (
        described["KmsKeyId"] == f"arn:aws:kms:{REGION}:{deployment.account}:key/{deployment.physical['Key']}"
    )
    assert described["Name"].startswith("Generated-")  # CloudFormation's naming: logical id + suffix


def test_a_templated_value_puts_the_password_under_its_key_and_a_literal_is_resolved(rules):
    deployment, _ = rules
    sm, _ = _clients()
    templated = json.loads(
        sm.get_secret_value(SecretId=deployment.of_type(SECRET)["Templated"])["SecretString"]
    )
    assert templated["user"] == "app" and len(templated["password"]) == 20
    literal = sm.describe_secret(SecretId=deployment.of_type(SECRET)["Literal"])
    assert literal["Name"] == "LocalSecretRules-literal"
    assert sm.get_secret_value(SecretId=literal["ARN"])["SecretString"] == f"value-{REGION}"


def test_variables_moto_dropped_are_restored_resolved_and_the_rest_kept(rules):
    deployment, messages = rules
    arns = deployment.of_type(SECRET)
    assert _environment(deployment, "Fn") == {
        "PLAIN": "kept by moto",
        "GENERATED_ARN": arns["Generated"],
        "TEMPLATED_ARN": arns["Templated"],
        "JOINED": f"{arns['Literal']}#suffix",
    }
    assert any("ALARM" in m and "not set locally" in m for m in messages), messages


# --- the demo tenant's real template ------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(moto, tmp_path_factory):
    synth = deploy.synthesize("demo", tmp_path_factory.mktemp("cdk.out"))
    return deploy.deploy(synth, region=REGION)


def test_the_api_function_reads_a_tenant_secret_that_exists_in_moto(demo):
    sm, _ = _clients()
    api = demo.outputs["ApiFunctionName"]
    api_id = next(lid for lid, name in demo.physical.items() if name == api)
    variables = _environment(demo, api_id)
    (secret_id, arn), *others = demo.of_type(SECRET).items()
    assert others == []
    assert variables[TENANT_SECRET_ENV] == arn
    value = sm.get_secret_value(SecretId=arn)["SecretString"]
    template_rules = demo.template["Resources"][secret_id]["Properties"]["GenerateSecretString"]
    assert len(value) == template_rules["PasswordLength"] >= 64 and set(value) <= ALNUM
    # Encrypted (as far as moto records it) with the tenant's data key, as the template says.
    (key_id, _) = demo.template["Resources"][secret_id]["Properties"]["KmsKeyId"]["Fn::GetAtt"]
    assert sm.describe_secret(SecretId=arn)["KmsKeyId"].endswith(f":key/{demo.physical[key_id]}")
    # Every other variable the template declares is there too, the time zone among them.
    declared = demo.template["Resources"][api_id]["Properties"]["Environment"]["Variables"]
    assert set(variables) == set(declared)
    assert variables["TENANT_TIME_ZONE"] == "Asia/Shanghai"


def test_a_worker_of_the_api_function_starts_with_the_secrets_arn(demo, moto, tmp_path):
    from moto.awslambda.models import lambda_backends

    api = demo.outputs["ApiFunctionName"]
    fn = lambda_backends[demo.account][REGION].get_function(api)
    runtime = LocalRuntime(demo.functions, moto_endpoint=moto.endpoint, region=REGION, log_dir=Path(tmp_path))
    environ = runtime.config_for(fn).environ()
    (arn,) = demo.of_type(SECRET).values()
    assert environ[TENANT_SECRET_ENV] == arn
