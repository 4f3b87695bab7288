"""A dashboard per tenant with what on call reads first: the API, the business events, clearing,
settlement, the dead letters (docs/runbook.md, "The dashboard")."""

from __future__ import annotations

import json

import pytest

from coupons.business_events import Event
from infra import REPO_ROOT
from infra.stack import stack_name
from tests.infra.conftest import only

pytestmark = pytest.mark.xdist_group("infra")


def _body(template: dict) -> dict:
    """The dashboard's body with every reference written as its logical id (or pseudo parameter)."""
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else p.get("Ref") or p["Fn::GetAtt"][0] for p in parts)
    return json.loads(text)


def _metrics(body: dict) -> dict[str, list[tuple[str, str, dict]]]:
    """{widget title: [(namespace, metric name, dimensions)]}."""
    found = {}
    for widget in body["widgets"]:
        props = widget["properties"]
        rows = []
        for row in props.get("metrics", []):
            names = [x for x in row if isinstance(x, str)]
            if len(names) < 2 or names[0] == "...":
                continue
            rows.append((names[0], names[1], dict(zip(names[2::2], names[3::2], strict=False))))
        found[props.get("title", "")] = rows
    return found


def test_each_tenant_has_its_dashboard_named_for_its_stack(tenant: str, template: dict):
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
    assert dashboard["Properties"]["DashboardName"] == stack_name(tenant)


def test_the_dashboard_shows_requests_latency_errors_business_events_clearing_settlement_and_dead_letters(
    tenant: str, template: dict
):
    widgets = _metrics(_body(template))
    names = {title: {(ns, name) for ns, name, _ in rows} for title, rows in widgets.items()}
    ours = f"CouponClearing/{tenant}"
    assert {("AWS/ApiGateway", m) for m in ("Count", "4XXError", "5XXError")} <= names[
        "API requests, 4xx, 5xx (a minute)"
    ]
    assert ("AWS/ApiGateway", "Latency") in names["API latency (ms)"]
    assert {(ours, Event.COUPON_REDEEMED), (ours, Event.REDEMPTION_REVERSED)} <= names[
        "Redemptions and reversals (a minute)"
    ]
    assert names["Journals posted (a minute)"] == {(ours, Event.JOURNAL_POSTED)}
    assert {("AWS/Lambda", "IteratorAge"), (ours, "ClearingRecordsPending")} <= names[
        "Clearing: iterator age (ms), records pending"
    ]
    assert ("AWS/States", "ExecutionTime") in names["Settlement duration (s)"]
    assert {("AWS/States", "ExecutionsSucceeded"), ("AWS/States", "ExecutionsFailed"),
            (ours, Event.SETTLEMENT_RUN_CLOSED)} <= names["Settlement outcome (an hour)"]  # fmt: skip
    dead = widgets["Dead-letter depth (messages)"]
    assert [(ns, name) for ns, name, _ in dead] == [("AWS/SQS", "ApproximateNumberOfMessagesVisible")] * 2
    # Business metrics carry the dimensions powertools Metrics writes for this tenant.
    for rows in widgets.values():
        for ns, _, dimensions in rows:
            if ns == ours:
                assert dimensions == {"service": "coupons", "tenant": tenant}


def test_the_dashboard_shows_the_state_of_every_alarm(template: dict):
    body = _body(template)
    (status,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    alarms = [r for r, x in template["Resources"].items() if x["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(status["properties"]["alarms"]) == len(alarms)


def test_every_widget_is_explained_in_the_runbook(template: dict):
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text()
    section = runbook.split("## The dashboard", 1)[1].split("\n## ", 1)[0]
    for widget in _body(template)["widgets"]:
        title = widget["properties"]["title"]
        assert f"**{title.split(' (')[0]}" in section, title
