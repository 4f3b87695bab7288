"""The settlement state machine's executions, as the API sees them: start one by name, ask how it is."""

from __future__ import annotations

import json
from typing import Any


class ExecutionExists(Exception):
    """An execution of that name exists already (Step Functions keeps names unique)."""


class SettlementWorkflow:
    def __init__(self, client, state_machine_arn: str):
        self._client = client
        self._arn = state_machine_arn

    def execution_arn(self, name: str) -> str:
        # arn:aws:states:{region}:{account}:stateMachine:{machine} → ...:execution:{machine}:{name}
        prefix, _, machine = self._arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"

    def start(self, name: str, payload: dict[str, Any]) -> str:
        try:
            answer = self._client.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(payload)
            )
        except self._client.exceptions.ExecutionAlreadyExists:
            raise ExecutionExists(name) from None
        return answer["executionArn"]

    def status(self, name: str) -> str | None:
        """RUNNING / SUCCEEDED / FAILED / TIMED_OUT / ABORTED, or None if there is no such execution."""
        try:
            answer = self._client.describe_execution(executionArn=self.execution_arn(name))
        except self._client.exceptions.ExecutionDoesNotExist:
            return None
        return answer["status"]
