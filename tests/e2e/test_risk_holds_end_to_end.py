"""Issue #18's settlement-hold acceptance on a stack `make local` serves (its own: it settles and closes
dates): a REVIEW redemption is paid only by the run after its release; a held party's postings are
settled by the run after its release."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import own_local_stack
from tests.e2e.support import Api
from tests.e2e.test_settlement_end_to_end import World, next_date, settle

# In the e2e group with the rest: two local stacks at once on 2 cores starve each other's functions.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

local_stack = own_local_stack()


def parties(run: dict) -> dict[str, int]:
    return {p["party"]: p["currencies"][0]["net"] for p in run["parties"] if p["currencies"]}


def test_review_and_party_holds_are_settled_by_the_run_after_their_release(local_stack):
    api, admin = Api(local_stack["base_url"]), local_stack["keys"]["admin"]
    world = World(api, admin, 2)
    reviewed, held = (f"merchant:{m}" for m in world.merchant_ids)
    # Every merchant's second redemption of the hour is reviewed.
    rule = {
        "type": "velocity",
        "per": "merchant",
        "measure": "count",
        "window": {"unit": "hour"},
        "threshold": 1,
    }
    api.ok("POST", "/v1/risk/rules", admin,
           {"rules": [{"rule_id": "second", "condition": rule, "action": "REVIEW", "reason": "e2e"}]})  # fmt: skip
    first = world.redeem(world.merchant_ids[0])
    second = world.redeem(world.merchant_ids[0])
    assert second["risk"]["action"] == "REVIEW", second
    hold = api.ok("POST", "/v1/risk/holds", admin, {"party": held, "reason": "e2e"})
    world.redeem(world.merchant_ids[1])
    today = world.business_date(second)
    world.business_date(first)

    day1 = settle(local_stack, next_date(today, 1))
    paid1 = parties(day1)
    assert held not in paid1
    waiting = api.ok("GET", "/v1/risk/holds", admin, party=held)
    assert waiting["held"] and waiting["held"][0]["amount"] > 0
    assert api.ok("GET", "/v1/risk/holds", admin, party=reviewed)["held"][0]["lines"][0]["review_hold"] == (
        f"review:{second['redemption_id']}"
    )
    # The run's statements show what waits: the held party's (all its lines held: net 0, nothing
    # transferred) and the reviewed redemption's line on its merchant's, each with why.
    statements = f"/v1/settlement-runs/{day1['run_id']}/statements"
    held_statement = api.ok("GET", f"{statements}/{held}", admin)
    assert [(t["net"], t["transfer"]) for t in held_statement["totals"]] == [(0, 0)]
    assert held_statement["held"][0]["amount"] == waiting["held"][0]["amount"]
    assert held_statement["held"][0]["lines"][0]["held_because"]["hold_id"] == hold["hold_id"]
    reviewed_statement = api.ok("GET", f"{statements}/{reviewed}", admin)
    assert [line["held_because"] for line in reviewed_statement["held"][0]["lines"]] == [
        {"review_hold": f"review:{second['redemption_id']}"}
    ]

    api.ok("POST", f"/v1/risk/reviews/{second['redemption_id']}/release", admin, {"reason": "checked"})
    api.ok("POST", f"/v1/risk/holds/{hold['hold_id']}/release", admin, {})
    day2 = settle(local_stack, next_date(today, 2))
    paid2 = parties(day2)
    assert paid2[reviewed] == paid1[reviewed]  # the reviewed redemption: the same share as the first
    assert paid2[held] == waiting["held"][0]["amount"]
    assert api.ok("GET", "/v1/risk/holds", admin, party=held)["held"] == []
    decisions = api.ok("GET", "/v1/risk/decisions", admin, subject=held)["items"]
    assert sorted(d["action"] for d in decisions if d.get("hold_id") == hold["hold_id"]) == [
        "HOLD",
        "RELEASE",
    ]
