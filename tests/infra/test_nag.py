"""cdk-nag's AwsSolutions checks pass on every tenant's stack; each acknowledged rule says why."""

from __future__ import annotations

import json
import re

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks

from infra import REPO_ROOT
from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.xdist_group("infra")


def test_no_unacknowledged_aws_solutions_finding_error_or_warning(synthesized: Synthesized):
    # cdk-nag 3 is a policy validation plugin: it reports violations instead of annotating the
    # stack, and acknowledged rules (Validations.of(...).acknowledge) are left out of them.
    report = AwsSolutionsChecks().validate_scope(synthesized.app)
    findings = [
        f"{v.severity} {v.rule_name} at {r.construct_path}: {v.description}"
        for v in report.violations
        for r in v.violating_resources
    ]
    assert findings == []
    assert report.success


def test_every_acknowledged_rule_carries_a_reason_of_at_least_a_sentence(synthesized: Synthesized):
    acknowledged = {
        (path, rule): reason
        for metadata in synthesized.metadata.values()
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry["data"].items()
    }
    assert acknowledged, "expected the known acknowledgments (API auth in the function, X-Ray, runtime)"
    for (path, rule), reason in acknowledged.items():
        assert len(reason.split()) >= 10 and reason.rstrip().endswith("."), f"{path} {rule}: {reason!r}"


# Every acknowledged AwsSolutions rule of every stack, by rule (its resource-specific suffix dropped):
# a new acknowledgement fails here until it is listed, and each reason must stay true (see the runbook
# and the constructs).
ACKNOWLEDGED = {
    "AwsSolutions-APIG2": "requests validated in the function (problem+json naming the field)",
    "AwsSolutions-APIG4": "the function authenticates hashed API keys",
    "AwsSolutions-COG4": "the function authenticates hashed API keys",
    "AwsSolutions-IAM4": "the account stack's API Gateway CloudWatch role uses AWS's policy for it",
    "AwsSolutions-IAM5": "X-Ray/log delivery have no resource ARNs; wildcards scoped to one tenant's objects",
    "AwsSolutions-L1": "Python 3.11 locked with the layer's wheels",
    "AwsSolutions-SF1": "ERROR level without execution data (amounts and parties stay out of logs)",
    "AwsSolutions-SMG4": "rotation voids every TOTP secret: the runbook's procedure",
    "AwsSolutions-SQS3": "the queues are themselves dead-letter queues",
}


def _acknowledged(synthesized: Synthesized) -> dict[tuple[str, str], str]:
    metadata = {**synthesized.metadata}
    account = synthesized.outdir / "CouponClearingAccount.metadata.json"
    metadata["account"] = json.loads(account.read_text())
    return {
        (path, rule): reason
        for entries_by_path in metadata.values()
        for path, entries in entries_by_path.items()
        for entry in entries
        if entry["type"] == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry["data"].items()
    }


def test_the_acknowledged_rules_are_exactly_the_listed_ones(synthesized: Synthesized):
    # (cdk 2's metadata also records each acknowledgement once more as "Annotation::<rule>".)
    rules = {rule.removeprefix("Annotation::").split("[", 1)[0] for _, rule in _acknowledged(synthesized)}
    assert rules == set(ACKNOWLEDGED)


def test_no_acknowledgement_claims_limits_no_one_enforces_or_a_runbook_that_does_not_exist(
    synthesized: Synthesized,
):
    acknowledged = _acknowledged(synthesized)
    # APIG3 (WAF) and APIG6 (execution logging) hold now: the stage has a web ACL and logs errors.
    assert not any("AwsSolutions-APIG3" in rule or "AwsSolutions-APIG6" in rule for _, rule in acknowledged)
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text()
    for (path, rule), reason in acknowledged.items():
        if "runbook" in reason:
            section = re.search(r'docs/runbook\.md, section "([^"]+)"', reason)
            assert section, f"{path} {rule}: name the runbook's section"
            assert f"### {section.group(1)}\n" in runbook, f"{path} {rule}: no section {section.group(1)!r}"
