"""The two Lambda layers every function uses: the shared code (coupons) and the third-party dependencies."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import REPO_ROOT

RUNTIME = lambda_.Runtime.PYTHON_3_11
ARCHITECTURE = lambda_.Architecture.ARM_64
# What never belongs in a deployed asset: bytecode of the developer's interpreter, test caches.
ASSET_EXCLUDE = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.ruff_cache"]

# The project's own installer, at the version the Makefile installs into .venv-uv (the one that made uv.lock).
UV = REPO_ROOT / ".venv-uv" / "bin" / "uv"
UV_VERSION = re.search(r"^UV_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M).group(1)
TARGET_ARGS = [
    # Wheels for Lambda's machine, whatever machine synthesizes: no compiler, no Docker needed.
    "--python-platform", "aarch64-manylinux2014",
    "--python-version", "3.11",
    "--only-binary", ":all:",
    # The lock's closure, each wheel checked against the lock's hash; nothing resolved anew.
    "--no-deps",
    "--require-hashes",
    # Files, not links into the cache: the staged asset stands on its own.
    "--link-mode", "copy",
]  # fmt: skip
REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "requirements.txt"


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_names() -> set[str]:
    names = set()
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(_normalized(line.split("==")[0]))
    return names


def lock_digest(lock_text: str | None = None) -> str:
    """The layer's asset hash: the lock's entries of the pinned packages (versions and wheel hashes), the
    installer's version and its target arguments. It changes exactly when what would be installed does,
    and is the same on every machine (no path, no timestamp)."""
    lock = tomllib.loads(lock_text if lock_text is not None else (REPO_ROOT / "uv.lock").read_text())
    names = pinned_names()
    packages = sorted(
        (p for p in lock["package"] if _normalized(p["name"]) in names), key=lambda p: _normalized(p["name"])
    )
    payload = {"installer": f"uv {UV_VERSION}", "args": TARGET_ARGS, "packages": packages}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _uv() -> str:
    found = str(UV) if UV.is_file() else shutil.which("uv")
    if found is None:
        raise RuntimeError(f"the dependencies layer is built with uv {UV_VERSION}: run `make install` first")
    version = subprocess.run([found, "--version"], check=True, capture_output=True, text=True).stdout.split()
    if version[1:2] != [UV_VERSION]:
        raise RuntimeError(
            f"{found} is {' '.join(version)}; the layer is built with uv {UV_VERSION} (make install)"
        )
    return found


@jsii.implements(ILocalBundling)
class UvInstall:
    """Installs the locked runtime closure into `<out>/python`, the folder Lambda mounts as /opt/python:
    `uv export` of uv.lock (runtime group only, with hashes), then `uv pip install` of exactly that."""

    def try_bundle(self, output_dir: str, *args, **kwargs) -> bool:
        uv = _uv()
        target = Path(output_dir) / "python"
        with tempfile.TemporaryDirectory() as scratch:
            exported = Path(scratch) / "requirements.txt"
            subprocess.run(
                [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-header", "--quiet",
                 "--format", "requirements-txt", "--output-file", str(exported)],
                check=True,
                cwd=REPO_ROOT,
            )  # fmt: skip
            subprocess.run(
                [uv, "pip", "install", "--quiet", "-r", str(exported), "--target", str(target), *TARGET_ARGS],
                check=True,
                cwd=REPO_ROOT,
            )
        # Console scripts carry this machine's interpreter path in their shebang; Lambda runs none.
        shutil.rmtree(target / "bin", ignore_errors=True)
        return True


class Layers(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # layers/core/python/coupons lands in /opt/python/coupons, importable as `coupons`.
        self.core = lambda_.LayerVersion(
            self,
            "Core",
            code=lambda_.Code.from_asset(str(REPO_ROOT / "layers" / "core"), exclude=ASSET_EXCLUDE),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="coupons: domain rules, data access and API plumbing shared by every function",
        )
        deps = REPO_ROOT / "layers" / "deps"
        self.deps = lambda_.LayerVersion(
            self,
            "Deps",
            code=lambda_.Code.from_asset(
                str(deps),
                # Hash what is installed (the lock's entries, the installer), not the install's output
                # (which carries timestamps): the layer changes exactly when the lock does, and a
                # staged bundle is reused across synths and machines.
                asset_hash_type=AssetHashType.CUSTOM,
                asset_hash=lock_digest(),
                bundling=BundlingOptions(
                    image=RUNTIME.bundling_image,
                    local=UvInstall(),
                    # Never reached: local bundling succeeds or raises (no Docker, no other pip).
                    command=["false"],
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="Locked third-party dependencies (uv.lock's runtime closure, layers/deps/requirements.txt)",
        )
