"""Every tenant's stack, synthesized once per test session (bundling skipped); the infra tests read it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

# Node 20 is the platform this repo runs on; jsii's end-of-life banner on every worker is noise.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
import pytest

from infra.account import ACCOUNT_STACK_NAME
from infra.app import build_app
from infra.stack import stack_name
from infra.tenants import tenant_names


@dataclass(frozen=True)
class Synthesized:
    app: cdk.App
    outdir: Path
    templates: dict[str, dict]  # by tenant name
    metadata: dict[str, dict]  # by tenant name: construct path -> metadata entries
    account: dict  # the account stack's template (infra/account.py)
    manifest: dict  # the cloud assembly's manifest.json (stack properties, dependencies)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(bundle=False, outdir=str(outdir))
    app.synth()
    tenants = tenant_names()
    return Synthesized(
        app=app,
        outdir=outdir,
        templates={t: json.loads((outdir / f"{stack_name(t)}.template.json").read_text()) for t in tenants},
        metadata={t: json.loads((outdir / f"{stack_name(t)}.metadata.json").read_text()) for t in tenants},
        account=json.loads((outdir / f"{ACCOUNT_STACK_NAME}.template.json").read_text()),
        manifest=json.loads((outdir / "manifest.json").read_text()),
    )


@pytest.fixture(params=tenant_names())
def tenant(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def template(synthesized: Synthesized, tenant: str) -> dict:
    return synthesized.templates[tenant]


def resources(template: dict, resource_type: str) -> dict[str, dict]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == resource_type}


def settlement_machine(template: dict) -> tuple[str, dict]:
    """The settlement state machine (the stack has reconciliation's too)."""
    found = {lid: r for lid, r in resources(template, "AWS::StepFunctions::StateMachine").items()
             if lid.startswith("Settlement")}  # fmt: skip
    assert len(found) == 1, f"expected one settlement state machine, found {sorted(found)}"
    return next(iter(found.items()))


def only(template: dict, resource_type: str) -> tuple[str, dict]:
    found = resources(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))
