"""A hypothesis state machine over issuance, in-process on moto: any interleaving of single and bulk issues
(random users, many repeated), voids, and pauses/resumes, spread over the shards of one campaign and over
several Issuers (each stands for a Lambda container, with its own memory of dry shards).

After every step the limits hold and the counters agree with what is actually stored:
  issued <= total_quantity and <= capacity, budget_used <= budget, every user holds <= per_user_limit;
  per shard, capacity - remaining = the coupons stored with that shard; per user, the holding counter =
  the user's coupons stored; GET's issued_count / budget_used = the coupons stored.
Every answer is also the one the model predicts: issued while quota is left anywhere and the user is
under the limit, `campaign_exhausted` only when no unit is left on any shard, and so on. A voided coupon
keeps its unit and its place in the holding (voiding gives nothing back).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

import boto3
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)
from moto import mock_aws

from coupons.data.campaigns import CampaignStore
from coupons.data.coupons import CouponStore
from coupons.data.schema import MAIN
from coupons.domain import coupons as rules
from coupons.domain.campaigns import CampaignTerms
from coupons.domain.principals import Principal, Role
from coupons.services import campaigns as campaign_service
from coupons.services import coupons as coupon_service
from coupons.services.issuance import Issuer

ADMIN = Principal(Role.ADMIN)
USERS = [f"user-{i}" for i in range(6)]
ISSUERS = 3

# What the invariant reads of each item (a coupon's history and terms would only slow the scan down);
# every name through a placeholder, as several (status, state, shard, capacity) are reserved words.
READ = ("pk", "user_id", "shard", "state", "face_value", "capacity", "remaining", "held", "status")
NAMES = {f"#a{i}": name for i, name in enumerate(READ)}
PROJECTION = ", ".join(NAMES)

MOTO: dict = {}
TABLES = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def moto():
    """One moto for the module (starting one per example would cost more than the example)."""
    with mock_aws():
        MOTO["client"] = boto3.client("dynamodb", region_name="eu-west-1")
        yield
        MOTO.clear()


ISSUED, EXHAUSTED, LIMIT, NOT_ACTIVE = (
    "ISSUED",
    "campaign_exhausted",
    "per_user_limit_reached",
    "campaign_not_active",
)


@st.composite
def campaign_terms(draw) -> dict:
    kind = draw(st.sampled_from(["FIXED", "PERCENT"]))
    face = draw(st.sampled_from([100, 250]))
    money = {"amount": face} if kind == "FIXED" else {"percent_bps": 1500, "max_discount": face}
    budget = draw(st.none() | st.integers(face, face * 35))
    return {
        "name": "property",
        "brand_id": "brand-a",
        "type": kind,
        "currency": "CNY",
        "valid_days": 30,
        "total_quantity": draw(st.integers(1, 30)),
        "shards": draw(st.integers(1, 8)),
        "per_user_limit": draw(st.integers(1, 3)),
        **money,
        **({"budget": budget} if budget is not None else {}),
    }


class Issuance(RuleBasedStateMachine):
    codes = Bundle("codes")

    def __init__(self):
        super().__init__()
        # A fresh table for every example, in the moto that the module started.
        self.ddb = MOTO["client"]
        self.table = f"coupons-property-{next(TABLES)}"
        table = MAIN.create_table_kwargs(self.table)
        # Without its stream: nothing here reads it, and moto deep-copies a table's whole stream history
        # on every transaction (it would be most of this file's run time).
        table.pop("StreamSpecification")
        self.ddb.create_table(**table)
        self.campaign_store = CampaignStore(self.ddb, self.table)
        self.coupon_store = CouponStore(self.ddb, self.table)

    def teardown(self):
        self.ddb.delete_table(TableName=self.table)

    # -- the model --------------------------------------------------------------------------------------

    def expected(self, user: str) -> str:
        if self.issued == self.capacity:
            return EXHAUSTED
        if self.held[user] >= self.terms["per_user_limit"]:
            return LIMIT
        return ISSUED

    def allowed(self, user: str) -> set[str]:
        """What an issue to `user` may answer now. While paused: not active, or exhausted from an
        Issuer that has seen every shard dry (it needs no write to know)."""
        if self.active:
            return {self.expected(user)}
        return {NOT_ACTIVE} | ({EXHAUSTED} if self.issued == self.capacity else set())

    def record(self, user: str, code: str) -> None:
        self.issued += 1
        self.held[user] += 1
        self.states[code] = "ISSUED"
        self.owners[code] = user

    # -- the steps --------------------------------------------------------------------------------------

    @initialize(
        terms=campaign_terms(), seeds=st.lists(st.integers(0, 2**32), min_size=ISSUERS, max_size=ISSUERS)
    )
    def create(self, terms, seeds):
        self.terms = terms
        created = campaign_service.create(self.campaign_store, CampaignTerms.model_validate(terms), ADMIN)
        self.campaign_id = created["campaign_id"]
        face = created["face_value"]
        self.capacity = (
            min(terms["total_quantity"], terms["budget"] // face)
            if "budget" in terms
            else terms["total_quantity"]
        )
        assert created["capacity"] == self.capacity and created["shards"] == terms["shards"]
        campaign_service.transition(self.campaign_store, self.campaign_id, "activate", ADMIN)
        self.active = True
        self.issuers = [Issuer(self.campaign_store, self.coupon_store, rng=random.Random(s)) for s in seeds]
        self.issued = 0
        self.held: Counter[str] = Counter()
        self.states: dict[str, str] = {}
        self.owners: dict[str, str] = {}

    @rule(target=codes, user=st.sampled_from(USERS), which=st.integers(0, ISSUERS - 1))
    def issue_one(self, user, which):
        issuer = self.issuers[which]
        allowed = self.allowed(user)
        try:
            campaign = issuer.campaign_for(self.campaign_id, ADMIN)
            coupon = issuer.issue_one(campaign, user, segment=None, issued_by="admin")
        except (rules.CampaignExhausted, rules.PerUserLimitReached, rules.CampaignNotActive) as refused:
            assert refused.code in allowed, (refused.code, allowed)
            return multiple()
        assert ISSUED in allowed, allowed
        assert coupon["user_id"] == user and coupon["campaign_id"] == self.campaign_id
        self.record(user, coupon["code"])
        return coupon["code"]

    @rule(
        target=codes,
        users=st.lists(st.sampled_from(USERS), min_size=1, max_size=4, unique=True),
        which=st.integers(0, ISSUERS - 1),
    )
    def issue_many(self, users, which):
        issuer = self.issuers[which]
        try:
            campaign = issuer.campaign_for(self.campaign_id, ADMIN)
            answer = issuer.issue_many(campaign, users, segment=None, issued_by="admin")
        except rules.CampaignNotActive:
            assert not self.active
            return multiple()
        assert [r["user_id"] for r in answer["results"]] == users
        issued = []
        for result in answer["results"]:
            allowed = self.allowed(result["user_id"])
            if result["status"] == "ISSUED":
                assert ISSUED in allowed, (result, allowed)
                self.record(result["user_id"], result["code"])
                issued.append(result["code"])
            else:
                assert result["reason"] in allowed, (result, allowed)
        assert answer["issued"] == len(issued) and answer["refused"] == len(users) - len(issued)
        return multiple(*issued)

    @rule(code=codes)
    def void(self, code):
        try:
            voided = coupon_service.void(self.coupon_store, code, ADMIN, "property")
        except rules.CouponNotVoidable:
            assert self.states[code] == "VOID"
            return
        assert self.states[code] == "ISSUED"
        assert voided["state"] == "VOID"
        self.states[code] = "VOID"

    @precondition(lambda self: self.active)
    @rule()
    def pause(self):
        campaign_service.transition(self.campaign_store, self.campaign_id, "pause", ADMIN)
        self.active = False

    @precondition(lambda self: not self.active)
    @rule()
    def resume(self):
        campaign_service.transition(self.campaign_store, self.campaign_id, "activate", ADMIN)
        self.active = True

    # -- what must hold after every step ----------------------------------------------------------------

    def stored(self) -> list[dict]:
        items, start = [], None
        while True:
            args = {
                "TableName": self.table,
                "ProjectionExpression": PROJECTION,
                "ExpressionAttributeNames": NAMES,
            }
            page = self.ddb.scan(**args, **({"ExclusiveStartKey": start} if start else {}))
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    @invariant()
    def limits_hold_and_counters_equal_what_is_stored(self):
        items = self.stored()
        coupons = [i for i in items if i["pk"]["S"].startswith("COUPON#")]
        shards = {int(i["pk"]["S"].rsplit("#", 1)[1]): i for i in items if i["pk"]["S"].startswith("QUOTA#")}
        holdings = {
            i["user_id"]["S"]: int(i["held"]["N"]) for i in items if i["pk"]["S"].startswith("HOLDING#")
        }

        # The limits.
        assert len(coupons) == self.issued <= self.capacity <= self.terms["total_quantity"]
        read = campaign_service.get(self.campaign_store, self.campaign_id, ADMIN)
        assert read["issued_count"] == len(coupons)
        assert read["budget_used"] == sum(int(c["face_value"]["N"]) for c in coupons)
        if "budget" in self.terms:
            assert read["budget_used"] <= self.terms["budget"]
        per_user = Counter(c["user_id"]["S"] for c in coupons)
        assert all(n <= self.terms["per_user_limit"] for n in per_user.values())

        # The quota shards: what each has given equals the coupons stored from it.
        assert sorted(shards) == list(range(self.terms["shards"]))
        assert sum(int(s["capacity"]["N"]) for s in shards.values()) == self.capacity
        by_shard = Counter(int(c["shard"]["N"]) for c in coupons)
        for index, shard in shards.items():
            capacity, remaining = int(shard["capacity"]["N"]), int(shard["remaining"]["N"])
            assert 0 <= remaining <= capacity
            assert capacity - remaining == by_shard[index], index
            assert shard["status"]["S"] == ("ACTIVE" if self.active else "PAUSED")

        # The holdings, and each coupon as the model knows it.
        assert holdings == {u: n for u, n in per_user.items()} == {u: n for u, n in self.held.items() if n}
        assert {c["pk"]["S"].removeprefix("COUPON#"): c["state"]["S"] for c in coupons} == self.states
        assert {c["pk"]["S"].removeprefix("COUPON#"): c["user_id"]["S"] for c in coupons} == self.owners


Issuance.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # No "explain" phase: it reruns a failing case dozens of times to annotate it, minutes on moto.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)


class TestIssuance(Issuance.TestCase):
    pass
