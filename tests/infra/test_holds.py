"""The redemption holds' expiry: an EventBridge rule every minute invoking the sweep function, whose role
queries the table's indexes and writes only holds (REDEMPTION#), coupons and their history; the API
function knows the tenant's default hold time."""

from __future__ import annotations

import pytest

from coupons.data import access
from infra.local.schedules import schedules
from infra.tenants import load_tenant
from tests.infra.conftest import resources
from tests.infra.test_functions import _listed, _role_of, _statements

pytestmark = pytest.mark.xdist_group("infra")


def _sweep(template: dict) -> tuple[str, dict]:
    logical_id = template["Outputs"]["HoldExpiryFunctionName"]["Value"]["Ref"]
    return logical_id, template["Resources"][logical_id]


def test_a_rule_invokes_the_hold_expiry_sweep_every_minute(template):
    sweep_id, sweep = _sweep(template)
    (rule,) = [
        r for k, r in resources(template, "AWS::Events::Rule").items() if k.startswith("HoldsSchedule")
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["State"] == "ENABLED"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [sweep_id, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert sweep["Properties"]["Handler"] == "handler.lambda_handler"
    assert sweep["Properties"]["Timeout"] == 60
    assert sweep["Properties"]["ReservedConcurrentExecutions"] == 1
    permissions = [
        p["Properties"]
        for p in resources(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [sweep_id, "Arn"]}
    ]
    assert [p["Principal"] for p in permissions] == ["events.amazonaws.com"]


def test_the_sweep_queries_the_indexes_and_writes_only_holds_coupons_and_history(template):
    sweep_id, sweep = _sweep(template)
    statements = _statements(template, _role_of(sweep))
    writes = [s for s in statements if "dynamodb:UpdateItem" in _listed(s["Action"])]
    (write,) = writes
    assert sorted(_listed(write["Action"])) == ["dynamodb:PutItem", "dynamodb:UpdateItem"]
    leading = write["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert sorted(leading) == sorted(access.patterns("holds.expiry"))
    assert sorted(leading) == ["COUPON#*", "HISTORY#*", "REDEMPTION#*"]
    reads = [s for s in statements if "dynamodb:Query" in _listed(s["Action"])]
    assert any("index/gsi1" in str(s["Resource"]) for s in reads)
    assert not any("dynamodb:Scan" in _listed(s["Action"]) for s in statements)


def test_the_api_knows_the_tenants_default_hold_time(tenant, template):
    api_id = template["Outputs"]["ApiFunctionName"]["Value"]["Ref"]
    variables = template["Resources"][api_id]["Properties"]["Environment"]["Variables"]
    assert variables["HOLD_SECONDS"] == str(load_tenant(tenant).hold_seconds)
    assert load_tenant(tenant).hold_seconds <= 7 * 24 * 3600


def test_the_local_stack_fires_the_hold_expiry_rule_and_no_other_but_reconciliations_resolutions(template):
    sweep_id, _ = _sweep(template)
    physical = {k: f"fn-{k}" for k in template["Resources"]}
    found, resolutions = sorted(schedules(template, physical), key=lambda s: not s.rule.startswith("Holds"))
    assert resolutions.rule.startswith("ReconciliationResolutionsSchedule")  # tests/infra/test_reconciliation.py
    assert (found.seconds, found.functions) == (60, (f"fn-{sweep_id}",))
    assert found.targets == ((f"fn-{sweep_id}", b"{}"),)
    assert {s.seconds for s in schedules(template, physical, override=2.0)} == {2.0}
