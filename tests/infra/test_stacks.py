"""The app: a stack per tenant, nothing named alike across tenants, the outputs operators rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import REPO_ROOT
from infra.account import ACCOUNT_STACK_NAME
from infra.stack import stack_name
from infra.tenants import tenant_names
from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.xdist_group("infra")

# Properties that name a resource. PolicyName is left out: an IAM policy's name is scoped to the
# role it is attached to, not to the account.
PHYSICAL_NAME_PROPERTIES = {
    "AlarmName", "AliasName", "ApiKeyName", "BucketName", "DashboardName", "EventBusName", "FunctionName",
    "GroupName", "LayerName", "LogGroupName", "ManagedPolicyName", "Name", "QueueName", "RoleName",
    "RuleName", "ScheduleGroupName", "SecretName", "StateMachineName", "StreamName", "TableName",
    "TopicName", "UsagePlanName",
}  # fmt: skip


def _literal_names(template: dict) -> set[str]:
    return {
        value
        for resource in template["Resources"].values()
        for key, value in resource.get("Properties", {}).items()
        if key in PHYSICAL_NAME_PROPERTIES and isinstance(value, str)
    }


def test_every_tenant_file_gives_a_stack_named_after_the_tenant(synthesized: Synthesized):
    assert set(synthesized.templates) == set(tenant_names()) >= {"demo", "acme"}
    for tenant, template in synthesized.templates.items():
        assert template["Outputs"]["TenantName"]["Value"] == tenant
    # Besides the tenants' stacks, only the account stack (one per account and region).
    assert {s.stack_name for s in synthesized.app.node.children if hasattr(s, "stack_name")} == {
        stack_name(t) for t in tenant_names()
    } | {ACCOUNT_STACK_NAME}


def test_no_two_tenant_stacks_share_a_physical_name(synthesized: Synthesized):
    demo, acme = (_literal_names(synthesized.templates[t]) for t in ("demo", "acme"))
    assert demo & acme == set()


def test_a_stack_exports_what_operators_and_the_local_stack_read(template: dict):
    assert {"ApiUrl", "MainTableName", "StatementsBucketName", "TenantName", "ApiFunctionName"} <= set(
        template["Outputs"]
    )


def test_the_api_url_names_the_prod_stage_without_depending_on_the_stage_resource(template: dict):
    url = json.dumps(template["Outputs"]["ApiUrl"]["Value"])
    assert "/prod/" in url
    assert "DeploymentStage" not in url


def test_synthesis_reports_no_cdk_warning_or_error(synthesized: Synthesized):
    problems = [
        f"{path}: {entry['data']}"
        for metadata in synthesized.metadata.values()
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] in ("aws:cdk:warning", "aws:cdk:error")
    ]
    assert problems == []


def test_the_cli_entry_point_synthesizes_only_the_tenant_in_context_and_passes_the_checks(tmp_path: Path):
    # What `cdk synth -c tenant=acme` does: run the app with the context in CDK_CONTEXT_JSON. The
    # entry point also runs the AwsSolutions checks, and fails the synthesis on a finding.
    context = {"tenant": "acme", "aws:cdk:bundling-stacks": []}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "layers" / "core" / "python"), str(REPO_ROOT)])
    done = subprocess.run(
        [sys.executable, "-m", "infra.app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("*.template.json")) == [
        "CouponClearing-acme.template.json",
        f"{ACCOUNT_STACK_NAME}.template.json",
    ]


def test_tenant_stacks_are_termination_protected_and_deploy_after_the_account_stack(
    synthesized: Synthesized,
):
    artifacts = synthesized.manifest["artifacts"]
    assert artifacts[ACCOUNT_STACK_NAME]["properties"]["terminationProtection"] is True
    for tenant in tenant_names():
        artifact = artifacts[stack_name(tenant)]
        assert artifact["properties"]["terminationProtection"] is True
        assert ACCOUNT_STACK_NAME in artifact["dependencies"]
