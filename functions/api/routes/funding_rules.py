"""/v1/funding-rules: who bears what share of a discount, versioned."""

from __future__ import annotations

from typing import Annotated

from answers import FundingRule, documented
from aws_lambda_powertools.event_handler.openapi.params import Body

import dependencies
from coupons.domain.funding import RuleTerms, RuleVersionTerms
from coupons.domain.principals import Role
from coupons.services import funding
from resolver import app, caller, created, json_response, roles


@app.post(
    "/v1/funding-rules",
    summary="Create a funding rule, version 1 (admin: platform-wide or a brand's; issuer: its brand's)",
    tags=["clearing"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="createFundingRule",
    responses=documented((201, FundingRule, "the rule with version 1")),
)
def create_rule(terms: Annotated[RuleTerms, Body()]):
    principal = caller()
    return created(
        lambda completion: funding.create(dependencies.ledger(), terms, principal, completion=completion)
    )


@app.post(
    "/v1/funding-rules/<rule_id>/versions",
    summary="Add a version effective from now or a later time (rules never change the past)",
    tags=["clearing"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER),
    operation_id="addFundingRuleVersion",
    responses=documented((201, FundingRule, "the new version")),
)
def add_version(rule_id: str, terms: Annotated[RuleVersionTerms, Body()]):
    principal = caller()
    return created(
        lambda completion: funding.add_version(
            dependencies.ledger(), rule_id, terms, principal, completion=completion
        )
    )


@app.get(
    "/v1/funding-rules/<rule_id>",
    summary="A funding rule with all its versions",
    tags=["clearing"],
    operation_id="getFundingRule",
    responses=documented((200, FundingRule, "the rule with its versions")),
)
def get_rule(rule_id: str):
    header, versions = funding.readable(dependencies.ledger(), rule_id, caller())
    return json_response(200, {**header, "versions": versions})


@app.post(
    "/v1/funding-rules/<rule_id>/versions/<version>/approve",
    summary="Approve a proposed version (admin): in force from its effective_from or now, whichever is "
    "later; approving an approved version changes nothing",
    tags=["clearing"],
    openapi_extensions=roles(Role.ADMIN),
    operation_id="approveFundingRuleVersion",
    responses=documented((200, FundingRule, "the rule with its versions")),
)
def approve_version(rule_id: str, version: int):
    principal = caller()
    # Approving is idempotent by itself; the key makes a replay say so, as every listed POST does.
    return created(lambda _: funding.approve(dependencies.ledger(), rule_id, version, principal), status=200)
