"""cdk-nag's AwsSolutions checks pass on every tenant's stack; each acknowledged rule says why."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks

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
