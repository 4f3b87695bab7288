"""Every sample API event in events/api is a request the API function answers sensibly (never a 5xx)."""

import json
from pathlib import Path

import pytest

from tests.events import EVENTS
from tests.integration.conftest import FakeContext

SAMPLES = sorted(p.stem for p in (EVENTS / "api").glob("*.json"))


@pytest.mark.parametrize("name", SAMPLES)
def test_a_sample_event_gets_a_problem_or_an_answer_never_a_5xx(api, keys, name):
    event = json.loads((Path(EVENTS) / "api" / f"{name}.json").read_text())
    if "x-api-key" in event["headers"]:
        event["headers"]["x-api-key"] = keys["admin"]
        event["multiValueHeaders"]["x-api-key"] = [keys["admin"]]
    answer = api.handler.lambda_handler(event, FakeContext())
    assert 200 <= answer["statusCode"] < 500, answer
    if answer["statusCode"] >= 400:
        headers = {
            **(answer.get("headers") or {}),
            **{k: v[-1] for k, v in (answer.get("multiValueHeaders") or {}).items()},
        }
        assert headers["Content-Type"] == "application/problem+json"
