"""The dependencies layer installs exactly the locked runtime dependencies, built for Lambda's machine."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import aws_cdk as cdk
import pytest

from infra import REPO_ROOT
from infra.constructs.layers import UV_VERSION, Layers, UvInstall, lock_digest
from tests.infra.conftest import resources

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


def test_the_layer_is_built_by_the_project_s_uv_from_the_lock_for_aarch64_cpython_311_wheels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ran: list[list[str]] = []

    def run(command, check, cwd=None, capture_output=False, text=False):
        ran.append(command)
        return subprocess.CompletedProcess(command, 0, stdout=f"uv {UV_VERSION} (x86_64-unknown-linux-gnu)\n")

    monkeypatch.setattr("subprocess.run", run)
    assert UvInstall().try_bundle(str(tmp_path)) is True
    version, export, install = ran
    assert version[0] == export[0] == install[0] == str(REPO_ROOT / ".venv-uv" / "bin" / "uv")
    assert version[1:] == ["--version"]
    # The runtime group of uv.lock, as it is locked (never re-resolved), with its hashes.
    assert export[1] == "export" and {"--frozen", "--no-dev", "--no-emit-project"} <= set(export)
    joined = " ".join(install)
    assert install[1:3] == ["pip", "install"]
    assert f"--target {tmp_path / 'python'}" in joined
    for flag in (
        "--no-deps",
        "--require-hashes",
        "--python-platform aarch64-manylinux2014",
        "--only-binary :all:",
        "--python-version 3.11",
    ):
        assert flag in joined
    # Whatever pip is on PATH plays no part.
    assert not any(Path(c[0]).name == "pip" or c[0].endswith("pip3") for c in ran)


def test_an_installer_other_than_the_makefile_s_uv_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(
        "subprocess.run",
        lambda command, **_: subprocess.CompletedProcess(command, 0, stdout="uv 0.0.1 (somewhere)\n"),
    )
    with pytest.raises(RuntimeError, match=f"uv {UV_VERSION}"):
        UvInstall().try_bundle(str(tmp_path))


def test_the_layer_digest_follows_the_lock_s_runtime_entries_and_nothing_of_the_machine():
    lock = (REPO_ROOT / "uv.lock").read_text()
    assert lock_digest(lock) == lock_digest()
    # Another wheel hash of a pinned package is another layer; a change to a dev-only package is not.
    pinned = lock.replace(
        'name = "pydantic-core"\nversion = "2.50.4"', 'name = "pydantic-core"\nversion = "2.50.5"'
    )
    assert pinned != lock and lock_digest(pinned) != lock_digest(lock)
    dev_only = lock.replace('name = "pytest"\nversion = "9.2.0"', 'name = "pytest"\nversion = "9.2.1"')
    assert dev_only != lock and lock_digest(dev_only) == lock_digest(lock)


def _deps_layer_key(monkeypatch: pytest.MonkeyPatch, digest: str, outdir: Path) -> str:
    monkeypatch.setattr("infra.constructs.layers.lock_digest", lambda: digest)
    app = cdk.App(outdir=str(outdir), post_cli_context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "LayerOnly")
    Layers(stack, "Layers")
    template = app.synth().get_stack_by_name("LayerOnly").template
    (key,) = [
        layer["Properties"]["Content"]["S3Key"]
        for layer in resources(template, "AWS::Lambda::LayerVersion").values()
        if "Locked third-party" in layer["Properties"]["Description"]
    ]
    return key


def test_the_layer_asset_is_named_by_the_lock_digest_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    first = _deps_layer_key(monkeypatch, "a" * 64, tmp_path / "one")
    again = _deps_layer_key(monkeypatch, "a" * 64, tmp_path / "two")
    other = _deps_layer_key(monkeypatch, "b" * 64, tmp_path / "three")
    assert first == again != other
