"""The CDK app: the account stack (once per account and region) and a stack per tenant (`-c tenant=NAME`
picks one; absent, every tenant file)."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks

from infra import REPO_ROOT
from infra.account import AccountStack
from infra.stack import CouponClearingStack
from infra.tenants import load_tenants

BUNDLING_STACKS = "aws:cdk:bundling-stacks"


def _cdk_json_context() -> dict:
    # The CLI feeds cdk.json's context (feature flags) to the app; an app built in-process (tests,
    # the local stack) reads the same file, so both synthesize the same template.
    return json.loads((REPO_ROOT / "cdk.json").read_text()).get("context", {})


def build_app(tenants: list[str] | None = None, outdir: str | None = None, bundle: bool = True) -> cdk.App:
    """`bundle=False` skips asset bundling (no pip run): the deps layer then points at its source folder."""
    app = cdk.App(
        outdir=outdir,
        context=_cdk_json_context(),
        # Set after the CLI's context, so it wins even under `cdk synth`.
        post_cli_context={} if bundle else {BUNDLING_STACKS: []},
        analytics_reporting=False,
        # Creation stack traces in metadata cost synth time and say nothing a construct path doesn't.
        stack_traces=False,
    )
    if tenants is None:
        selected = app.node.try_get_context("tenant")
        tenants = [selected] if selected else None
    # Synthesized with every selection: `cdk deploy -c tenant=x` deploys it first where it is missing.
    account = AccountStack(app)
    for tenant in load_tenants(tenants):
        CouponClearingStack(app, tenant=tenant).add_stack_dependency(
            account, "API Gateway's account-wide CloudWatch role must exist before a logged stage"
        )
    return app


def main() -> None:
    app = build_app()
    # `cdk synth`/`cdk deploy` refuse a stack with an unacknowledged AwsSolutions finding; the
    # infra tests run the same checks and list the findings.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
