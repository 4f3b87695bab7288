"""The stack's own EventBridge schedules, fired locally: moto creates an `AWS::Events::Rule` with a
`ScheduleExpression` but never fires it. Here a rule the local stack runs (LOCAL_RULES: the redemption
holds' expiry sweep, reconciliation's post_resolutions) invokes its Lambda targets at its rate with the
target's Input, through moto's Lambda API, so they reach the local workers like any other invocation. Others (the audit signer, settlement's) still start by hand:
their e2e tests drive them at chosen moments.

`LOCAL_SCHEDULE_SECONDS` (environment) shortens every such rate, so that a test sees a hold released
within seconds of its expiry rather than within a minute."""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass

log = logging.getLogger("local.schedules")

# Logical-id prefixes of the rules fired locally.
LOCAL_RULES = ("HoldsSchedule", "ReconciliationResolutionsSchedule")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Schedule:
    rule: str  # logical id
    seconds: float
    targets: tuple[tuple[str, bytes], ...]  # (physical function name, payload) of its Lambda targets

    @property
    def functions(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.targets)


def rate_seconds(expression: str) -> int:
    found = _RATE.match(expression)
    if not found:
        raise ValueError(f"only rate(...) schedules run locally, not {expression!r}")
    return int(found.group(1)) * _UNIT[found.group(2).rstrip("s")]


def schedules(template: dict, physical: dict[str, str], *, override: float | None = None) -> list[Schedule]:
    """The template's rules fired locally, with their targets' function names."""
    found = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        if resource.get("Type") != "AWS::Events::Rule" or not logical_id.startswith(LOCAL_RULES):
            continue
        if "ScheduleExpression" not in props:
            continue
        targets = []
        for target in props.get("Targets") or []:
            arn = target.get("Arn")
            if isinstance(arn, dict) and "Fn::GetAtt" in arn:
                function_id = arn["Fn::GetAtt"][0]
                if function_id in physical:
                    # EventBridge sends a target's Input (a JSON string) instead of the event when it has one.
                    targets.append((physical[function_id], target.get("Input", "{}").encode()))
        seconds = override if override is not None else rate_seconds(props["ScheduleExpression"])
        found.append(Schedule(logical_id, seconds, tuple(targets)))
    return found


class Scheduler:
    """Fires each schedule's targets every `seconds` (an asynchronous invocation, as EventBridge makes)
    until stopped."""

    def __init__(self, found: list[Schedule], lambda_client):
        self._schedules = found
        self._lambda = lambda_client
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for schedule in self._schedules:
            thread = threading.Thread(
                target=self._run, args=(schedule,), name=f"schedule-{schedule.rule}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
            log.info("%s: every %.0f s → %s", schedule.rule, schedule.seconds, ", ".join(schedule.functions))

    def _run(self, schedule: Schedule) -> None:
        while not self._stop.wait(schedule.seconds):
            for name, payload in schedule.targets:
                try:
                    self._lambda.invoke(FunctionName=name, InvocationType="Event", Payload=payload)
                except Exception:  # the next tick tries again, as EventBridge's retries would
                    log.exception("%s: invoking %s failed", schedule.rule, name)

    def stop(self) -> None:
        self._stop.set()


def start(deployment, region: str) -> Scheduler:
    import boto3

    override = os.environ.get("LOCAL_SCHEDULE_SECONDS")
    found = schedules(
        deployment.template, deployment.physical, override=float(override) if override else None
    )
    scheduler = Scheduler(found, boto3.client("lambda", region_name=region))
    scheduler.start()
    return scheduler
