"""schemathesis against the local stack: every operation, as an admin and as a merchant, checked for
server errors and for status code, content type and response schema conformance. Bounded: about
80 s per key, so the whole run stays near 3 minutes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.mark.parametrize("principal", ["admin", "merchant:m-001"])
def test_schemathesis_finds_no_failure(base_url, keys, principal):
    run = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{base_url}/v1/openapi.json", "-H", f"x-api-key: {keys[principal]}",
         "--checks", CHECKS, "--phases", "examples,fuzzing", "--max-examples", "10", "--max-time", "75",
         "--seed", "11"],
        capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
