"""Issue #14's acceptance on a local stack of its own, tenant `acme` (Europe/Berlin, EUR, the simulated
channel charging 0.6 % borne by the party, T+0 cut-off 22:00, holiday calendar `acme`): T+N pays on
its day, T+0 by the intraday run before its cut-off and by the next daily run after it, each transfer
posted in the ledger so a paid party's balance is 0.

Amounts by hand (EUR, minor units; funding rule: the brand bears the whole discount):

  T+1 at M1: order 10,000, FIXED 10.00 off → discount 1,000: brand −1,000, M1 +1,000.
     Commission (M1's rule): 5 % of the order = 500, capped at 300 → M1 −300, platform +300.
     M1 is owed gross 1,000 − commission 300 = net 700, due the next business day D (acme's calendar).
     The daily run of D (cut at D's start) pays it: fee floor(700 × 60 / 10,000) = floor(4.2) = 4,
     borne by M1 → the channel moves 696; journal M1 −700, settlement:simulated +696, fees:simulated +4.
     M1's balance after the payout: 700 − 700 = 0.
  T+0 at M2, before the cut-off: discount 1,000 → M2 +1,000, due today; today's intraday run pays it:
     fee floor(1,000 × 60 / 10,000) = 6 → the channel moves 994.
  T+0 at M3, after the cut-off: the same amounts; not the intraday run's: the next daily run (tomorrow,
     cut at tomorrow's start) pays it, 994.

The cut-off: acme's is 22:00; to have a redemption on each side of it without waiting for 22:00, the
test sets the tenant's T+0 cut-off (the functions' SETTLEMENT_T0_CUTOFF, as a deploy of a changed
tenant file would) to the next minute but one, redeems, waits for that minute to pass, redeems again,
then starts the intraday run through the API (its cut-off has passed, so the API accepts it).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from coupons.domain import calendars
from infra.tenants import load_tenant
from tests.e2e.conftest import own_local_stack
from tests.e2e.support import Api, aws_client, wait_for_clearing
from tests.e2e.test_settlement_end_to_end import RUN_WAIT_S, next_date, party, settle

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

TENANT = "acme"
ZONE = "Europe/Berlin"


# A stack of its own: another tenant (acme), and it settles today and the next days.
local_stack = own_local_stack(tenant=TENANT)


class Acme:
    def __init__(self, api: Api, admin: str):
        self.api, self.admin = api, admin
        tag = uuid.uuid4().hex[:8]
        self.brand = f"brand-tl-{tag}"
        self.m1, self.m2, self.m3 = (f"m-tl-{tag}-{i}" for i in (1, 2, 3))
        self.keys = {
            m: api.ok("POST", "/v1/api-keys", admin, {"principal": f"merchant:{m}"})["api_key"]
            for m in (self.m1, self.m2, self.m3)
        }
        rule = api.ok("POST", "/v1/funding-rules", admin, {
            "name": f"brand pays {tag}", "brand_ids": [self.brand],
            "shares": {"PLATFORM": 0, "BRAND": 10000, "MERCHANT": 0},
        })  # fmt: skip
        api.ok("POST", "/v1/commission-schedule/versions", admin, {
            "rules": [{"merchant_id": self.m1, "terms": {"basis": "ORDER", "bps": 500, "maximum": {"EUR": 300}}}],
        })  # fmt: skip
        common = {"brand_id": self.brand, "currency": "EUR", "type": "FIXED", "amount": 1000, "valid_days": 30,
                  "total_quantity": 10, "funding_rule_id": rule["rule_id"]}  # fmt: skip
        self.t1 = self._campaign({**common, "name": f"tl T+1 {tag}", "settlement_cycle": "T+1"})
        self.t0 = self._campaign({**common, "name": f"tl T+0 {tag}", "settlement_cycle": "T+0"})
        time.sleep(1.1)  # the rule's and the commission's versions take effect at the next whole second

    def _campaign(self, body: dict) -> str:
        campaign = self.api.ok("POST", "/v1/campaigns", self.admin, body)
        self.api.ok("POST", f"/v1/campaigns/{campaign['campaign_id']}/activate", self.admin)
        return campaign["campaign_id"]

    def redeem(self, merchant: str, campaign: str, order_amount: int) -> dict:
        code = self.api.ok("POST", f"/v1/campaigns/{campaign}/coupons", self.admin,
                           {"user_id": f"u-{uuid.uuid4().hex[:8]}"})["code"]  # fmt: skip
        redeemed = self.api.ok("POST", "/v1/redemptions", self.keys[merchant], {
            "code": code, "merchant_id": merchant, "store_id": "s-1", "order_amount": order_amount,
            "currency": "EUR", "order_id": f"o-{uuid.uuid4().hex[:10]}",
        })  # fmt: skip
        return wait_for_clearing(self.api, self.admin, redeemed["redemption_id"])


def set_t0_cutoff(local_stack, cutoff: str) -> None:
    """The tenant's T+0 cut-off, changed on every function that reads it (the API, the Open step)."""
    client = aws_client(local_stack, "lambda")
    for name in local_stack["functions"].values():
        variables = client.get_function_configuration(FunctionName=name).get("Environment", {}).get("Variables", {})
        if "SETTLEMENT_T0_CUTOFF" in variables:
            client.update_function_configuration(
                FunctionName=name, Environment={"Variables": {**variables, "SETTLEMENT_T0_CUTOFF": cutoff}}
            )


def closed_by_api(api: Api, admin: str, body: dict) -> dict:
    answer = api.call("POST", "/v1/settlement-runs", admin, body)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    deadline = time.monotonic() + RUN_WAIT_S
    while (run := api.ok("GET", f"/v1/settlement-runs/{run_id}", admin, limit=500))["status"] != "CLOSED":
        assert run["status"] != "FAILED" and time.monotonic() < deadline, run
        time.sleep(0.5)
    return run


def paid(run: dict, merchant: str) -> bool:
    return any(p["party"] == f"merchant:{merchant}" for p in run["parties"])


def statement_total(api: Api, run_id: str, merchant: str, key: str) -> dict:
    (total,) = api.ok("GET", f"/v1/settlement-runs/{run_id}/statements/merchant:{merchant}", key)["totals"]
    return total


@pytest.fixture(scope="module")
def acme(local_stack, api):
    now = datetime.now(ZoneInfo(ZONE))
    today = now.date().isoformat()
    calendar = load_tenant(TENANT).business_calendar()
    world = Acme(api, local_stack["keys"]["admin"])
    t1 = world.redeem(world.m1, world.t1, 10_000)
    assert t1["business_date"] == today
    result = {"world": world, "today": today, "t1": t1, "t0": None}

    # T+0 on both sides of the next whole minute's cut-off, 20 s away at least (same local day, a
    # business day): the redemption before it must be in by then.
    cut = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    if cut - now < timedelta(seconds=20):
        cut += timedelta(minutes=1)
    t0_due = calendars.due_date(today, "T+0", calendar)
    if cut.date() != now.date() or t0_due != today:
        return result  # near midnight, or today is not a business day in acme's calendar: no T+0 today
    set_t0_cutoff(local_stack, cut.strftime("%H:%M"))
    before = world.redeem(world.m2, world.t0, 10_000)
    while datetime.now(ZoneInfo(ZONE)) < cut + timedelta(seconds=1):
        time.sleep(0.5)
    after = world.redeem(world.m3, world.t0, 10_000)
    assert before["business_date"] == after["business_date"] == today
    intraday = closed_by_api(api, world.admin, {"settlement_date": today, "kind": "intraday"})
    result["t0"] = {"cut": cut, "intraday": intraday}
    return result


def test_a_t1_redemption_is_paid_its_computed_net_by_the_next_days_run_and_the_merchant_ends_at_zero(
    local_stack, api, acme
):
    world, today, t1 = acme["world"], acme["today"], acme["t1"]
    due = t1["due_date"]
    assert due == calendars.due_date(today, "T+1", load_tenant(TENANT).business_calendar())
    # The daily run of tomorrow (cut at its start: all of today) ...
    tomorrow = settle(local_stack, next_date(today, 1))
    if due == next_date(today, 1):
        run = tomorrow  # ... pays it: the next day, not the day after
    else:
        assert not paid(tomorrow, world.m1)  # due on the next business day: its run pays it
        run = settle(local_stack, due)
    assert run["status"] == "CLOSED" and run["run_id"] == f"stl_{due.replace('-', '')}"
    mine = party(run, f"merchant:{world.m1}")
    assert (mine["decision"], mine["net"], mine["transfer"]) == ("PAYOUT", 700, 700)

    total = statement_total(api, run["run_id"], world.m1, world.keys[world.m1])
    assert (total["gross"], total["commission"], total["net"]) == (1000, 300, 700)
    assert (total["fee"], total["fee_borne_by"], total["transferred"]) == (4, "PARTY", 696)
    assert total["closing_balance"] == 0
    assert api.balance(f"merchant:{world.m1}", world.admin) == {"EUR": 0}
    assert api.balance("fees:simulated", world.admin)["EUR"] >= 4


def test_a_t0_redemption_before_the_cutoff_is_paid_that_day_and_one_after_it_by_the_next_daily_run(
    local_stack, api, acme
):
    if acme["t0"] is None:
        pytest.skip("no intraday run today: within a minute or two of midnight, or not a business day in acme")
    world, today, intraday = acme["world"], acme["today"], acme["t0"]["intraday"]
    assert intraday["run_id"] == f"stl_{today.replace('-', '')}_t0" and intraday["run_kind"] == "INTRADAY"
    assert intraday["cutoff_at"] == acme["t0"]["cut"].astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert paid(intraday, world.m2) and not paid(intraday, world.m3) and not paid(intraday, world.m1)
    assert statement_total(api, intraday["run_id"], world.m2, world.keys[world.m2])["transferred"] == 994

    # The next daily run (tomorrow's; the T+1 test may have run it already: it is one run) pays M3.
    nxt = settle(local_stack, next_date(today, 1))
    run_id = nxt["run_id"]
    assert run_id == f"stl_{next_date(today, 1).replace('-', '')}"
    view = api.ok("GET", f"/v1/settlement-runs/{run_id}", world.admin, limit=500)
    assert paid(view, world.m3) and not paid(view, world.m2)
    assert statement_total(api, run_id, world.m3, world.keys[world.m3])["transferred"] == 994
    for merchant in (world.m2, world.m3):
        assert api.balance(f"merchant:{merchant}", world.admin) == {"EUR": 0}
    # Refused while the cut-off is ahead: the intraday run of tomorrow.
    refused = api.call("POST", "/v1/settlement-runs", world.admin,
                       {"settlement_date": next_date(today, 1), "kind": "intraday"})  # fmt: skip
    assert refused.status_code == 400 and refused.json()["code"] == "settlement_cutoff_in_future"
    assert json.loads(refused.text)["field"] == "settlement_date"

