"""The dependencies layer installs exactly the locked runtime dependencies, built for Lambda's machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from infra import REPO_ROOT
from infra.constructs.layers import PipInstall

pytestmark = pytest.mark.xdist_group("infra")

REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "requirements.txt"


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_normalized(name)] = version
    return pins


def _lock() -> dict[str, dict]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    return {_normalized(p["name"]): p for p in lock["package"]}


def _runtime_closure() -> set[str]:
    """pyproject's [project] dependencies (with their extras) and everything they need, per uv.lock."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    lock = _lock()
    todo: list[tuple[str, tuple[str, ...]]] = []
    for requirement in project["dependencies"]:
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[([^\]]+)\])?", requirement)
        extras = tuple(e.strip() for e in match.group(2).split(",")) if match.group(2) else ()
        todo.append((_normalized(match.group(1)), extras))
    seen: set[str] = set()
    while todo:
        name, extras = todo.pop()
        package = lock[name]
        deps = list(package.get("dependencies", []))
        for extra in extras:
            deps += package.get("optional-dependencies", {}).get(extra, [])
        seen.add(name)
        for dep in deps:
            todo.append((_normalized(dep["name"]), tuple(dep.get("extra", ()))))
    return seen


def test_every_pin_of_the_layer_is_the_version_locked_in_uv_lock():
    lock = _lock()
    assert {name: lock[name]["version"] for name in _pins()} == _pins()


def test_the_layer_pins_the_whole_runtime_closure_and_nothing_else():
    # Installed with --no-deps, so a missing transitive pin would be missing on Lambda.
    assert set(_pins()) == _runtime_closure()


def test_local_bundling_installs_the_pins_alone_as_aarch64_cpython_311_wheels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ran: list[list[str]] = []
    monkeypatch.setattr("subprocess.run", lambda command, check: ran.append(command))
    assert PipInstall(REQUIREMENTS.parent).try_bundle(str(tmp_path)) is True
    (command,) = ran
    joined = " ".join(command)
    assert f"-r {REQUIREMENTS}" in joined
    assert f"--target {tmp_path / 'python'}" in joined
    for flag in (
        "--no-deps",
        "--platform manylinux2014_aarch64",
        "--only-binary=:all:",
        "--python-version 3.11",
        "--implementation cp",
    ):
        assert flag in joined
