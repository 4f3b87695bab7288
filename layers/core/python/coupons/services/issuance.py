"""Issuing coupons to users within every limit, one user or up to 500 at once.

Each coupon is one DynamoDB transaction (quota shard, coupon, user's holding: see data/coupons.py).
The shard is picked at random; a shard that has run dry is remembered by this container (quota never
returns to a shard, so that memory is never wrong) and the next one is tried, so a user is refused
`campaign_exhausted` only when every shard is dry.

Under an Idempotency-Key, one coupon commits with the key's completion (one transaction); a bulk
call (many transactions) derives each user's code from the key (codes.derived_code), so a re-run
after a lost completion finds the coupons of its first run by their codes and answers them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from coupons.data.campaigns import CampaignStore
from coupons.data.coupons import CodeTaken, CouponStore, HoldingFull, ShardRefused, WriteConflict
from coupons.data.idempotency import Completion, put_of
from coupons.data.risk import RiskGuardsFailed
from coupons.domain import codes
from coupons.domain import coupons as rules
from coupons.domain.campaigns import CampaignStatus
from coupons.domain.errors import CampaignNotFound, Contention, DomainError
from coupons.domain.principals import Principal, Role
from coupons.domain.risk.rules import Event
from coupons.services.risk import RuleSets, Subjects, attempt_for, issuance_context

# A new code clashing with an existing one is a 1-in-2^80 event; a few tries make it impossible.
CODE_TRIES = 3
# Concurrent transactions on one shard can cancel each other (TransactionConflict): try elsewhere.
CONFLICT_TRIES = 8
CACHED_CAMPAIGNS = 1000


class Issuer:
    def __init__(
        self,
        campaigns: CampaignStore,
        coupons: CouponStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        tenant_key: Callable[[], bytes] | None = None,
        risk_rules: RuleSets | None = None,
    ):
        self._risk_rules = risk_rules
        self._campaigns = campaigns
        self._coupons = coupons
        self._tenant_key = tenant_key  # keys the codes derived from an Idempotency-Key
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._dry: set[tuple[str, int]] = set()
        # ACTIVE campaigns by id. Terms never change, and the status is checked again by every
        # issuance write (on the shard), so a stale entry can refuse late but never issue wrongly.
        self._active: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def campaign_for(self, campaign_id: str, principal: Principal) -> dict[str, Any]:
        """The campaign, if `principal` may issue from it (admin, or the issuer of its brand)."""
        principal.require(Role.ADMIN, Role.ISSUER)
        campaign = self._active.get(campaign_id) or self._campaigns.get(campaign_id)
        if campaign is None or (principal.role is Role.ISSUER and campaign["brand_id"] != principal.brand_id):
            raise CampaignNotFound(field="campaign_id")
        if campaign["status"] == CampaignStatus.ACTIVE:
            with self._lock:
                if len(self._active) >= CACHED_CAMPAIGNS:
                    self._active.clear()
                self._active[campaign_id] = campaign
        return campaign

    def issue_one(
        self,
        campaign: dict[str, Any],
        user_id: str,
        *,
        segment: str | None,
        issued_by: str,
        completion: Completion | None = None,
        subjects: Subjects | None = None,
    ) -> dict[str, Any]:
        """The coupon issued; with `completion` (an Idempotency-Key), committed with it. `subjects`: the
        end user's device and addresses the issuance risk rules look at."""
        return self._issue(
            campaign, user_id, segment=segment, issued_by=issued_by, completion=completion, subjects=subjects
        )[0]

    def _issue(
        self,
        campaign: dict[str, Any],
        user_id: str,
        *,
        segment: str | None,
        issued_by: str,
        completion: Completion | None = None,
        derived: str | None = None,
        subjects: Subjects | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """(the coupon, whether it was there already). `derived`: a code derived from the request's
        Idempotency-Key, tried first; the user's coupon under it is the first run's."""
        now = self._clock()
        rules.check_issuable(campaign, now)
        rules.check_audience(campaign, user_id, segment)
        campaign_id = campaign["campaign_id"]
        shards = [s for s in range(campaign["shards"]) if (campaign_id, s) not in self._dry]
        self._rng.shuffle(shards)
        if not shards and derived is not None:
            # Dry here, but the first run may have issued this coupon: the write will say which.
            shards = [self._rng.randrange(campaign["shards"])]
        conflicts = 0
        risk = None
        while shards:
            shard = shards[0]
            coupon = rules.new_coupon(
                campaign,
                code=derived or codes.new_code(campaign["code_tag"], campaign.get("code_prefix", "")),
                user_id=user_id,
                issued_by=issued_by,
                now=now,
                shard=shard,
            )
            if risk is None:
                at = int(now.timestamp())
                risk = attempt_for(  # the context is made at once, of this first coupon
                    self._risk_rules,
                    Event.ISSUANCE,
                    lambda at=at, coupon=coupon: issuance_context(subjects, at=at, coupon=coupon),
                )
            guards = () if risk is None else risk.plan(coupon.get("face_value", 0)).guards
            try:
                found = self._write(coupon, shard, campaign["per_user_limit"], completion, derived, guards)
                if risk is not None and found is None:
                    risk.committed(coupon["code"])
                return found or coupon, found is not None
            except RiskGuardsFailed as refused:
                risk.cancelled(refused.failed)  # a DENY raises RiskDenied; else the next plan decides
                continue
            except ShardRefused as refused:
                status = refused.shard.get("status")
                if status and status != CampaignStatus.ACTIVE:
                    self._active.pop(campaign_id, None)
                    raise rules.CampaignNotActive(f"the campaign is {status}") from None
                with self._lock:
                    self._dry.add((campaign_id, shard))
                shards.pop(0)
            except HoldingFull:
                raise rules.PerUserLimitReached(field="user_id") from None
            except WriteConflict:
                conflicts += 1
                if conflicts >= CONFLICT_TRIES:
                    raise Contention(field="campaign_id") from None
                time.sleep(self._rng.uniform(0, 0.005 * conflicts))
                shards.append(shards.pop(0))  # another shard next: the conflict was on this one
        raise rules.CampaignExhausted()

    def _write(
        self,
        coupon: dict[str, Any],
        shard: int,
        per_user_limit: int,
        completion: Completion | None,
        derived: str | None,
        guards: tuple = (),
    ) -> dict[str, Any] | None:
        """Writes `coupon`; returns the coupon found instead when `derived` is already this user's."""
        for _ in range(CODE_TRIES - 1):
            try:
                self._coupons.issue(
                    coupon,
                    shard=shard,
                    per_user_limit=per_user_limit,
                    completion=put_of(completion, coupon),
                    guards=guards,
                )
                return None
            except CodeTaken as taken:
                mine = (taken.coupon.get("campaign_id"), taken.coupon.get("user_id"))
                if coupon["code"] == derived and mine == (coupon["campaign_id"], coupon["user_id"]):
                    return taken.coupon
                code = coupon["code"]
                coupon["code"] = codes.new_code(codes.tag_of(code), codes.prefix_of(code))
        self._coupons.issue(
            coupon,
            shard=shard,
            per_user_limit=per_user_limit,
            completion=put_of(completion, coupon),
            guards=guards,
        )
        return None

    def issue_many(
        self,
        campaign: dict[str, Any],
        user_ids: list[str],
        *,
        segment: str | None,
        issued_by: str,
        completion: Completion | None = None,
        subjects: Subjects | None = None,
    ) -> dict[str, Any]:
        """Each user's outcome; one refusal never undoes the others. A campaign that cannot issue at
        all (not ACTIVE, outside its window) refuses the whole call before anything is written.

        With `completion` (an Idempotency-Key) each user's code derives from (scope, key, user): a
        re-run finds what its first run issued, and when it issues nothing new its answer is a replay."""
        rules.check_issuable(campaign, self._clock())
        results = []
        found = new = 0
        for user_id in user_ids:
            derived = None
            if completion is not None:
                derived = codes.derived_code(
                    self._tenant_key(),
                    f"{completion.scope}|{completion.key}|{user_id}",
                    campaign["code_tag"],
                    campaign.get("code_prefix", ""),
                )
            try:
                coupon, there = self._issue(
                    campaign,
                    user_id,
                    segment=segment,
                    issued_by=issued_by,
                    derived=derived,
                    subjects=subjects,
                )
                found, new = found + there, new + (not there)
                results.append({"user_id": user_id, "status": "ISSUED", "code": coupon["code"]})
            except (rules.PerUserLimitReached, rules.CampaignExhausted, rules.UserNotEligible) as refused:
                results.append({"user_id": user_id, "status": "REFUSED", "reason": refused.code})
            except DomainError as refused:
                if not results or all(r["status"] == "REFUSED" for r in results):
                    raise
                results.append({"user_id": user_id, "status": "REFUSED", "reason": refused.code})
        if completion is not None and found and not new:
            completion.found_first()
        issued = sum(r["status"] == "ISSUED" for r in results)
        return {"issued": issued, "refused": len(results) - issued, "results": results}
