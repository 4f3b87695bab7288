"""cfn-lint on every synthesized template (both tenants and the account stack): no error, no warning but
the ones listed here with the reason they are not ours to fix."""

from __future__ import annotations

import json

import pytest
from cfnlint.api import ManualArgs, lint

from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.xdist_group("infra")

# Regions the templates are checked against (resource types and properties differ per region).
REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-1"]
IGNORED = {
    # CDK itself puts a DependsOn on each function's role next to the GetAtt of that role (so the role's
    # inline policies exist before the function); redundant, harmless, and not emitted by our code.
    "W3005": "CDK's redundant DependsOn from a Lambda function to its own role.",
}


def _templates(synthesized: Synthesized) -> dict[str, dict]:
    return {**synthesized.templates, "account": synthesized.account}


@pytest.mark.parametrize("stack", ["demo", "acme", "account"])
def test_cfn_lint_finds_no_error_and_no_unlisted_warning(synthesized: Synthesized, stack: str):
    template = _templates(synthesized)[stack]
    matches = lint(
        json.dumps(template),
        regions=REGIONS,
        config=ManualArgs(regions=REGIONS, ignore_checks=sorted(IGNORED)),
    )
    assert [f"{m.rule.id} {m.path}: {m.message}" for m in matches] == []


def test_every_ignored_cfn_lint_rule_is_a_warning_with_its_reason():
    for rule, reason in IGNORED.items():
        assert rule.startswith("W") and len(reason.split()) >= 5
