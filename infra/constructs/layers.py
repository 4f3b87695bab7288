"""The two Lambda layers every function uses: the shared code (coupons) and the third-party dependencies."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
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

_PIP_TARGET_ARGS = [
    # Wheels for Lambda's machine, whatever machine synthesizes: no compiler, no Docker needed.
    "--platform", "manylinux2014_aarch64",
    "--only-binary=:all:",
    "--python-version", "3.11",
    "--implementation", "cp",
]  # fmt: skip


def _pip() -> list[str] | None:
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    # uv-made virtualenvs have no pip of their own; any pip can install for another platform.
    for name in ("pip3.11", "pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


@jsii.implements(ILocalBundling)
class PipInstall:
    """Installs a requirements.txt into `<out>/python`, the folder Lambda mounts as /opt/python."""

    def __init__(self, source: Path) -> None:
        self._source = source

    def try_bundle(self, output_dir: str, *args, **kwargs) -> bool:
        pip = _pip()
        if pip is None:
            print("no pip found to bundle the dependencies layer locally", file=sys.stderr)
            return False
        command = [
            *pip, "install", "--quiet", "--disable-pip-version-check", "--root-user-action=ignore", "--no-deps",
            "-r", str(self._source / "requirements.txt"),
            "--target", str(Path(output_dir) / "python"),
            *_PIP_TARGET_ARGS,
        ]  # fmt: skip
        subprocess.run(command, check=True)
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
                # Hash the pins, not pip's output (which carries timestamps): the layer changes
                # exactly when requirements.txt does, and a staged bundle is reused across synths.
                asset_hash_type=AssetHashType.SOURCE,
                bundling=BundlingOptions(
                    image=RUNTIME.bundling_image,
                    local=PipInstall(deps),
                    # Only used where local bundling is impossible (no pip), on a machine with Docker.
                    command=[
                        "bash",
                        "-c",
                        "pip install --no-deps -r requirements.txt --target /asset-output/python "
                        + " ".join(_PIP_TARGET_ARGS),
                    ],  # fmt: skip
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="Pinned third-party dependencies (layers/deps/requirements.txt)",
        )
