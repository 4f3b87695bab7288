"""The checkov checks `make audit-iac` skips are exactly the ones docs/iac-audit.md gives a reason for."""

from __future__ import annotations

import re

import pytest

from infra import REPO_ROOT

pytestmark = pytest.mark.xdist_group("infra")


def test_every_skipped_checkov_check_is_documented_with_its_reason_and_no_other():
    skipped = re.findall(r"^\s+- (CKV\w+)$", (REPO_ROOT / ".checkov.yaml").read_text(), flags=re.M)
    rows = re.findall(
        r"^\| (CKV\w+) \| [^|]+ \| ([^|]+) \|$", (REPO_ROOT / "docs" / "iac-audit.md").read_text(), flags=re.M
    )
    assert skipped and sorted(skipped) == sorted(check for check, _ in rows)
    assert all(len(reason.split()) >= 8 for _, reason in rows)
