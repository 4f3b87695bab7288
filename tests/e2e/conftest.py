"""The local stack, started for the e2e session exactly as `make local` starts it (the command is read from
the Makefile's `local` recipe), on a free port and with its state in a temporary folder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 120


def make_local_command(port: int = 0, tenant: str = "demo") -> list[str]:
    """The `local` target's command line with its make variables filled in."""
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^local:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "Makefile has no `local` target"
    lines = [line.strip() for line in recipe.group(1).splitlines() if "infra.local" in line]
    assert len(lines) == 1, f"expected one infra.local command in `make local`, got {lines}"
    values = {"PY": sys.executable, "TENANT": tenant, "PORT": str(port), "CURDIR": str(REPO)}

    def fill(match: re.Match) -> str:
        name = match.group(1)
        assert name in values, f"`make local` uses $({name}); teach tests/e2e/conftest.py its value"
        return values[name]

    return shlex.split(re.sub(r"\$\((\w+)\)", fill, lines[0]))


def _makefile_env() -> dict[str, str]:
    env = dict(os.environ)
    # The Makefile exports this PYTHONPATH to every recipe.
    env["PYTHONPATH"] = f"{REPO}/layers/core/python:{REPO}"
    # The stack makes its own AWS environment; nothing of the test process's may leak in.
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MOTO_PORT"):
        env.pop(name, None)
    return env


# The base URLs of the local stacks this session started: the answers the conformance check records.
STACK_BASES: set[str] = set()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    with started_local_stack(tmp_path_factory) as endpoints:
        yield endpoints


@contextlib.contextmanager
def started_local_stack(tmp_path_factory, tenant: str = "demo"):
    """`make local` in a subprocess until READY; its endpoints; stopped on exit. A test module whose
    runs would disturb the shared stack's (settling a date others settle), or that needs another
    tenant's settings, starts its own with this."""
    state = tmp_path_factory.mktemp("local-stack")
    endpoints_file = state / "endpoints.json"
    output_path = state / "make-local.out"
    command = [*make_local_command(port=0, tenant=tenant), "--endpoints-file", str(endpoints_file)]
    with open(output_path, "wb") as output:
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=_makefile_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = time.monotonic()

    def output_text() -> str:
        return output_path.read_text(errors="replace")

    try:
        while True:
            if "\nREADY " in "\n" + output_text():
                break
            if proc.poll() is not None:
                pytest.fail(f"the local stack exited with {proc.returncode} before READY:\n{output_text()}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                pytest.fail(f"the local stack was not READY in {READY_TIMEOUT_S} s:\n{output_text()}")
            time.sleep(0.2)
        endpoints = json.loads(endpoints_file.read_text())
        endpoints["ready_seconds"] = time.monotonic() - started
        endpoints["output_file"] = str(output_path)
        endpoints["endpoints_file"] = str(endpoints_file)
        STACK_BASES.add(endpoints["base_url"].rstrip("/"))
        yield endpoints
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def own_local_stack(tenant: str = "demo"):
    """A module-scoped `local_stack` for a module whose runs would disturb the shared stack's (it settles
    a date another module settles): `local_stack = own_local_stack()` at the module's top level. The
    fixtures below are module-scoped so that they follow whichever stack the module uses."""

    @pytest.fixture(scope="module")
    def local_stack(tmp_path_factory):
        with started_local_stack(tmp_path_factory, tenant=tenant) as endpoints:
            yield endpoints

    return local_stack


@pytest.fixture(scope="module")
def base_url(local_stack) -> str:
    return local_stack["base_url"]


@pytest.fixture(scope="module")
def keys(local_stack) -> dict[str, str]:
    return local_stack["keys"]


@pytest.fixture(scope="module")
def api(base_url):
    from tests.e2e.support import Api

    return Api(base_url)


@pytest.fixture(scope="session", autouse=True)
def conforming_answers(request):
    """Records every answer the e2e tests get from the local stack; at the end, checks them all against
    the document the stack serves (tests/conformance.py). A test that never starts the stack records
    nothing and checks nothing."""
    import requests

    from tests import conformance

    recorded: list = []
    documents: dict[str, dict] = {}  # base URL → its document, read while the stack runs
    original = requests.Session.send

    def send(session, prepared, **kwargs):
        response = original(session, prepared, **kwargs)
        base, found, rest = response.url.partition("/v1/")
        # Only the local stack's answers: other servers (the gateway's own tests) are not this API.
        if found and base in STACK_BASES and not rest.startswith("openapi.json"):
            if base not in documents:
                documents[base] = original(
                    session, requests.Request("GET", f"{base}/v1/openapi.json").prepare(), timeout=10
                ).json()
            path = "/v1/" + rest.split("?", 1)[0]
            recorded.append(
                (base, conformance.Recorded(
                    prepared.method.lower(), path, response.status_code,
                    response.headers.get("Content-Type", ""), response.text,
                ))
            )  # fmt: skip
        return response

    requests.Session.send = send
    yield
    requests.Session.send = original
    found = [
        problem
        for base, doc in documents.items()
        for problem in conformance.problems_in(doc, [a for b, a in recorded if b == base])
    ]
    assert not found, "Answers that do not conform to the OpenAPI document:\n  " + "\n  ".join(found)
