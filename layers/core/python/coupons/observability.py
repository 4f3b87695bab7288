"""Tracing and business metrics, the same on every function.

- `tracer`: powertools Tracer (X-Ray), patching botocore only: every AWS SDK call is a subsegment.
  Disabled where POWERTOOLS_TRACE_DISABLED is set (tests, the local stack, benches).
- `metrics`: powertools Metrics, flushed as CloudWatch embedded metric format (EMF) by each handler's
  `@metrics.log_metrics`: one metric per business event (`Event`), a count, in the tenant's namespace
  (POWERTOOLS_METRICS_NAMESPACE, set by infra/constructs/function.py) with the dimensions `service`
  and `tenant`. The dashboard (infra/constructs/dashboard.py) graphs them.
  Their names are coupons.business_events' (importable without powertools, as the infra does).

Events are counted by the handlers, where their outcome is known (the API's answer, clearing's
outcome, a step's result), never inside the services.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from coupons.business_events import Event

# Where no namespace is set (a bench, a script), metrics still have somewhere to go instead of failing.
_NAMESPACE = (
    os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or f"CouponClearing/{os.environ.get('TENANT', 'local')}"
)


tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics(namespace=_NAMESPACE, service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "coupons")
metrics.set_default_dimensions(tenant=os.environ.get("TENANT", "local"))


def count(event: Event, value: int = 1) -> None:
    if value > 0:
        metrics.add_metric(name=event.value, unit=MetricUnit.Count, value=value)


# The API's answers that are business events: (method, path, status) → event. An idempotent replay
# (Idempotent-Replayed) repeats an answer, not the event, and is not counted.
_API_EVENTS = (
    ("POST", re.compile(r"/v1/campaigns/[^/]+/coupons"), 201, Event.COUPON_ISSUED),
    ("POST", re.compile(r"/v1/coupons/[^/]+/void"), 200, Event.COUPON_VOIDED),
    ("POST", re.compile(r"/v1/redemptions"), 201, Event.COUPON_REDEEMED),
    ("POST", re.compile(r"/v1/redemptions/[^/]+/reversals"), 201, Event.REDEMPTION_REVERSED),
)
_BULK_ISSUE = re.compile(r"/v1/campaigns/[^/]+/coupons")


def count_api_answer(event: dict[str, Any], answer: dict[str, Any]) -> None:
    """Counts the business event an API answer stands for, if any."""
    # API Gateway's REST resolver answers headers as multiValueHeaders (lists), some as headers.
    headers = {k.lower(): [v] for k, v in (answer.get("headers") or {}).items()}
    for k, values in (answer.get("multiValueHeaders") or {}).items():
        headers.setdefault(k.lower(), []).extend(values)
    if "true" in headers.get("idempotent-replayed", []):
        return
    method, path, status = event.get("httpMethod"), event.get("path") or "", answer.get("statusCode")
    if method == "POST" and status == 200 and _BULK_ISSUE.fullmatch(path):
        with contextlib.suppress(ValueError, TypeError, AttributeError):  # 200: how many it issued
            count(Event.COUPON_ISSUED, int(json.loads(answer.get("body") or "{}").get("issued", 0)))
        return
    for m, pattern, s, business_event in _API_EVENTS:
        if method == m and status == s and pattern.fullmatch(path):
            count(business_event)
            return
