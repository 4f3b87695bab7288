"""Quoting, redeeming and reversing: the checkout hot path.

A redemption of a FIXED / PERCENT / THRESHOLD coupon is ONE DynamoDB request in a warm container:
the code names its campaign (its tag), the campaign's terms are immutable and cached here, so the
discount is computed before any I/O and one TransactWriteItems decides and records everything
(data/redemptions.py). A gift card's take depends on its balance, which only the coupon knows, so a
gift card is read first (two requests; more only when concurrent takes race on one card).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coupons.data.campaigns import CampaignStore
from coupons.data.coupons import CouponStore, WriteConflict
from coupons.data.idempotency import Completion, IdempotencyRecordExists, IdempotencyStore
from coupons.data.redemptions import (
    CampaignInactive,
    CouponChange,
    CouponRefused,
    GuessGateClosed,
    IdempotencyWrite,
    QrTokenUsed,
    RedemptionIdTaken,
    RedemptionStore,
)
from coupons.data.risk import RiskGuardsFailed
from coupons.domain import codes, hold_ids, verification
from coupons.domain import idempotency as idempotency_rules
from coupons.domain import redemption as rules
from coupons.domain import redemption_holds as hold_rules
from coupons.domain.campaigns import CampaignType
from coupons.domain.coupons import CouponNotFound, iso
from coupons.domain.errors import Contention
from coupons.domain.ids import new_id
from coupons.domain.principals import Principal
from coupons.domain.risk import holds as risk_holds
from coupons.domain.risk.guessing import CouponLocked
from coupons.domain.risk.rules import Event
from coupons.services.guesses import Guesses, refuse_if_locked
from coupons.services.redemption_holds import hold_answer
from coupons.services.reversals import REVERSALS_PAGE, RedemptionNotFound, Reversals  # noqa: F401
from coupons.services.risk import Attempt, RuleSets, Subjects, attempt_for, redemption_context

# Bounded retries: a transaction that met another (TransactionConflict), or a reversal whose totals
# moved. A gift card whose balance moved under us is retried separately, up to LOST_RACES: each lost
# race means another take succeeded, so while the card has balance the retries make progress, and the
# failed write returns the new balance (no extra read).
ATTEMPTS = 12
LOST_RACES = 500
# A retry starts only while this much of the function's time is left after it, at the pace of the slowest
# attempt so far: a take that lost races for that long answers 409 contention (nothing written) rather than
# win just after the function timed out, when the till gets API Gateway's 502 for a take that happened.
# The pace matters where one attempt is seconds (a throttled table, a starved local stack), not 10 ms.
ANSWER_MARGIN_S = 5.0


class _Replayed(Exception):
    def __init__(self, status: int, body: Any):
        super().__init__("replayed")
        self.status, self.body = status, body


@dataclass(frozen=True)
class Order:
    merchant_id: str
    store_id: str
    order_amount: int
    currency: str
    order_id: str | None = None
    amount: int | None = None  # gift cards: the amount asked for, at most the order


@dataclass(frozen=True)
class Proof:
    """How the holder proved the coupon: the plain code, a QR token, or the code + a dynamic code."""

    code: str | None = None
    qr_token: str | None = None
    dynamic_code: str | None = None


class Redeemer:
    def __init__(
        self,
        campaigns: CampaignStore,
        coupons: CouponStore,
        redemptions: RedemptionStore,
        idempotency: IdempotencyStore,
        *,
        tenant_key: Callable[[], bytes],
        time_zone: str,
        idempotency_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        risk_rules: RuleSets | None = None,
        guesses: Guesses | None = None,
        hold_seconds: int = hold_rules.DEFAULT_HOLD_SECONDS,
    ):
        self._risk_rules = risk_rules
        self._guesses = guesses or Guesses(None)
        self._campaigns = campaigns
        self._coupons = coupons
        self._redemptions = redemptions
        self._idempotency = idempotency
        self._tenant_key = tenant_key
        self._time_zone = time_zone
        self._tenant_hold_seconds = hold_seconds  # the tenant's default hold (its file)
        self._ttl = idempotency_ttl_seconds
        self._clock = clock
        self._rng = random.SystemRandom()
        # Campaigns by code tag: their terms never change once they have coupons, so they are
        # cached for the container's life; the live status is checked by every redemption write.
        self._by_tag: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._reversals = Reversals(coupons, redemptions, time_zone=time_zone)

    # -- verification ------------------------------------------------------------------------

    def _verify(self, proof: Proof, now: int) -> tuple[str, rules.Verification]:
        if proof.qr_token is not None:
            claims = verification.verify_qr_token(self._tenant_key(), proof.qr_token, now=now)
            verified = rules.Verification(
                rules.Method.QR_TOKEN,
                owner=claims.user_id,
                qr_nonce=claims.nonce,
                qr_expires_at=claims.expires_at,
            )
            return claims.code, verified
        code = codes.normalize(proof.code)  # a typo is refused here: no read, no key lookup
        if proof.dynamic_code is not None:
            secret = verification.coupon_totp_secret(self._tenant_key(), code)
            step = verification.match_totp(secret, proof.dynamic_code, now)
            if step is None:
                self._guesses.dynamic_code_failed(self._coupons, code, now)
            return code, rules.Verification(rules.Method.DYNAMIC_CODE, totp_step=step)
        return code, rules.Verification(rules.Method.CODE)

    def _hold_seconds(self, campaign: dict[str, Any]) -> int:
        """How long a hold of this campaign's coupon lasts: its own default, else the tenant's."""
        return hold_rules.hold_seconds(campaign.get("hold_seconds"), self._tenant_hold_seconds)

    def campaign_of(self, code: str) -> dict[str, Any]:
        tag = codes.tag_of(code)
        campaign = self._by_tag.get(tag)
        if campaign is None:
            campaign_id = self._campaigns.campaign_id_of_tag(tag)
            campaign = self._campaigns.get(campaign_id) if campaign_id else None
            if campaign is None:
                raise CouponNotFound(field="code")
            with self._lock:
                self._by_tag[tag] = campaign
        return campaign

    def _checked(
        self, proof: Proof, order: Order, principal: Principal, now: int
    ) -> tuple[str, rules.Verification, dict[str, Any]]:
        """Everything decided before any write: who may act, the proof, the campaign's terms."""
        rules.check_merchant(principal, order.merchant_id)
        code, verified = self._verify(proof, now)
        campaign = self.campaign_of(code)
        rules.check_terms(
            campaign,
            merchant_id=order.merchant_id,
            order_amount=order.order_amount,
            currency=order.currency,
            method=verified.method,
        )
        return code, verified, campaign

    # -- quote -------------------------------------------------------------------------------

    def quote(
        self, proof: Proof, order: Order, principal: Principal, subjects: Subjects | None = None
    ) -> dict[str, Any]:
        """What this order would get, or the precise refusal (raised). Reads the coupon; writes nothing
        but a miss (a code that does not exist) on the caller's guessing counters."""
        try:
            return self._quote(proof, order, principal)
        except CouponNotFound:
            self._guesses.missed(subjects, int(self._clock()))
            raise

    def _quote(self, proof: Proof, order: Order, principal: Principal) -> dict[str, Any]:
        instant = self._clock()
        now = int(instant)  # whole seconds for the proofs (token expiry, TOTP steps)
        code, verified, campaign = self._checked(proof, order, principal, now)
        coupon = self._coupons.get(code)
        if coupon is None:
            raise CouponNotFound(field="code")
        # Validity to the microsecond, as valid_from (the moment of issue) is written.
        now_iso = iso(datetime.fromtimestamp(instant, UTC))
        usable = (
            coupon["state"] in ("ISSUED", "PARTIALLY_USED")
            and coupon["valid_from"] <= now_iso < coupon["valid_until"]
        )
        if not usable or (verified.owner is not None and coupon["user_id"] != verified.owner):
            raise rules.refusal_from_coupon(coupon, now_iso=now_iso)
        answer: dict[str, Any] = {
            "code": code,
            "campaign_id": campaign["campaign_id"],
            "currency": order.currency,
        }
        if campaign["type"] == CampaignType.GIFT_CARD:
            take = rules.gift_card_take(coupon["balance"], order.order_amount, order.amount)
            if take == 0:
                raise rules.BalanceExhausted(field="code")
            answer.update(discount=take, balance_after=coupon["balance"] - take)
        else:
            answer["discount"] = rules.discount(campaign, order.order_amount)
            rules.check_discount(answer["discount"])
        answer["payable"] = order.order_amount - answer["discount"]
        return answer

    # -- redeem ------------------------------------------------------------------------------

    def redeem(
        self,
        proof: Proof,
        order: Order,
        principal: Principal,
        *,
        idempotency_scope: str,
        idempotency_key: str | None,
        request_body: Any,
        subjects: Subjects | None = None,
        capture: bool = True,
        seconds_left: float | None = None,
    ) -> tuple[int, Any, bool]:
        """(status, answer, replayed). Refusals are raised; a replay returns the first answer.
        `subjects`: the device, addresses and user the risk rules look at (none: only the order's).
        `capture` False places a redemption hold instead (services/redemption_holds.py captures or voids it).
        `seconds_left`: the time the caller has to answer in (the function's), which bounds the retries."""
        try:
            return self._redeem(
                proof,
                order,
                principal,
                scope=idempotency_scope,
                idempotency_key=idempotency_key,
                request_body=request_body,
                subjects=subjects,
                hold_for=None if capture else self._hold_seconds,
                seconds_left=seconds_left,
            )
        except CouponNotFound:
            self._guesses.missed(subjects, int(self._clock()))
            raise
        except _Replayed as replayed:
            return replayed.status, replayed.body, True

    def _redeem(
        self,
        proof: Proof,
        order: Order,
        principal: Principal,
        *,
        scope: str,
        idempotency_key: str | None,
        request_body: Any,
        subjects: Subjects | None = None,
        hold_for: Callable[[dict[str, Any]], int] | None = None,
        seconds_left: float | None = None,
    ) -> tuple[int, Any, bool]:
        if idempotency_key is not None:
            idempotency_rules.check_key(idempotency_key)
        fingerprint = idempotency_rules.fingerprint("POST", "/v1/redemptions", request_body)
        instant = self._clock()
        now = int(instant)  # whole seconds for the proofs and the idempotency record's times
        retry_until = None if seconds_left is None else instant + seconds_left - ANSWER_MARGIN_S
        try:
            code, verified, campaign = self._checked(proof, order, principal, now)
        except (verification.VerificationFailed, CouponLocked):
            # A till retrying after its QR token expired or its TOTP step passed must still get the
            # first answer: the proof was good when the first attempt used it.
            self._replay_if_done(scope, idempotency_key, fingerprint)
            raise
        gift = campaign["type"] == CampaignType.GIFT_CARD
        hold = None if hold_for is None else hold_for(campaign)
        # A gift card's balance and available amount (balance − holds; None: it never had a hold),
        # read first for a redemption. A hold reads nothing: its condition says the card has enough
        # available, and only when it has less is the hold computed again from what it has (`room`).
        balance = available = room = None
        if gift and hold is None:
            balance, available = self._gift_card(code)
        risk = self._risk_attempt(subjects, code, campaign, order, verified, now)
        guess = self._guesses.counters(subjects, now)
        conflicts = lost_races = 0
        slowest, attempt_started = 0.0, None
        while conflicts < ATTEMPTS and lost_races < LOST_RACES:
            started = self._clock()
            if attempt_started is not None:
                slowest = max(slowest, started - attempt_started)
            attempt_started = started
            if (conflicts or lost_races) and retry_until is not None and started + slowest >= retry_until:
                break
            moment = datetime.fromtimestamp(instant, UTC)  # validity to the microsecond
            if gift:
                spendable = _spendable(balance, available) if hold is None else room
                taken = rules.gift_card_take(
                    order.order_amount if spendable is None else spendable, order.order_amount, order.amount
                )
                if taken == 0:
                    # A retry of the request that drained the card must get its first answer.
                    self._replay_if_done(scope, idempotency_key, fingerprint)
                    raise rules.BalanceExhausted(field="code")
            else:
                taken = rules.discount(campaign, order.order_amount)
                rules.check_discount(taken)  # before any write: the coupon stays as it is
            guards = () if risk is None else risk.plan(taken).guards
            redemption, answer = self._records(
                campaign, code, order, principal, verified, moment, taken, balance, hold
            )
            if risk is not None:
                # What the rules decided travels on the record (a REVIEW's hold) and in the answer.
                decided = risk_holds.review_fields(risk.decision, redemption["redemption_id"])
                redemption.update(decided)
                if decided:
                    answer["risk"] = risk.decision.problem_extra() | {"action": risk.decision.action.value}
            body = json.dumps(answer)
            try:
                self._redemptions.redeem(
                    redemption,
                    CouponChange(
                        code=code,
                        campaign_id=campaign["campaign_id"],
                        now=iso(moment),
                        event={
                            "at": iso(moment),
                            "event": "REDEEMED" if hold is None else "HELD",
                            "redemption_id": redemption["redemption_id"],
                            "merchant_id": order.merchant_id,
                            "amount": taken,
                        },
                        redemption_id=redemption["redemption_id"],
                        balance_before=balance,
                        balance_after=None if balance is None else balance - taken,
                        available_before=available,
                        hold=hold is not None,
                        held=taken if gift and hold is not None else None,
                        owner=verified.owner,
                        totp_step=verified.totp_step,
                        at=now,
                    ),
                    shard=self._rng.randrange(campaign["shards"]),
                    idempotency=None
                    if idempotency_key is None
                    else IdempotencyWrite(
                        scope=scope,
                        key=idempotency_key,
                        fingerprint=fingerprint,
                        status=201,
                        body=body,
                        now=now,
                        expires_at=now + self._ttl,
                    ),
                    qr_token=None
                    if verified.qr_nonce is None
                    else (verified.qr_nonce, verified.qr_expires_at),
                    guards=guards,
                    guess=guess,
                )
                if risk is not None:
                    risk.committed(redemption["redemption_id"])
                return 201, answer, False
            except GuessGateClosed:
                raise self._guesses.refusal(now) from None
            except RiskGuardsFailed as refused:
                risk.cancelled(refused.failed)  # a DENY raises RiskDenied; else the next plan decides
                continue
            except IdempotencyRecordExists as existing:
                replay = idempotency_rules.on_existing(existing.record, fingerprint)
                return replay.status, replay.body, True
            except CampaignInactive:
                raise rules.CampaignNotRedeemable(field="code") from None
            except CouponRefused as refused:
                coupon = refused.coupon
                if not coupon:
                    raise CouponNotFound(field="code") from None
                if gift and hold is not None and _usable(coupon, iso(moment), verified):
                    room = _spendable(coupon.get("balance", 0), coupon.get("available"))
                    lost_races += 1  # less available than asked (or it moved): hold what there is
                    continue
                if gift and self._balance_moved(coupon, (balance, available), iso(moment), verified):
                    # Another take (or a hold) got in first: compute again from the card as it is now.
                    balance, available = coupon["balance"], coupon.get("available")
                    lost_races += 1
                    time.sleep(self._rng.uniform(0, 0.002 * min(lost_races, 10)))  # spread the herd
                    continue
                if verified.totp_step is not None:
                    refuse_if_locked(coupon, now)
                raise rules.refusal_from_coupon(coupon, now_iso=iso(moment)) from None
            except QrTokenUsed:
                raise verification.VerificationFailed() from None
            except (RedemptionIdTaken, WriteConflict):
                conflicts += 1
                time.sleep(self._rng.uniform(0, 0.01 * conflicts))
        raise Contention(field="code")

    def _risk_attempt(
        self, subjects: Subjects | None, code: str, campaign: dict[str, Any], order: Order,
        verified: rules.Verification, now: int,
    ) -> Attempt | None:  # fmt: skip
        """The risk evaluation of this redemption (None: no rules to evaluate)."""
        return attempt_for(
            self._risk_rules,
            Event.REDEMPTION,
            lambda: redemption_context(
                subjects,
                at=now,
                code=code,
                campaign_id=campaign["campaign_id"],
                merchant_id=order.merchant_id,
                store_id=order.store_id,
                currency=order.currency,
                user_id=verified.owner,
            ),
        )

    def _replay_if_done(self, scope: str, key: str | None, fingerprint: str) -> None:
        if key is None:
            return
        record = self._idempotency.get(scope, key)
        if record is not None and record.get("expires_at", 0) >= int(self._clock()):
            replay = idempotency_rules.on_existing(record, fingerprint)
            raise _Replayed(replay.status, replay.body)

    def _gift_card(self, code: str) -> tuple[int, int | None]:
        """A gift card's balance and available amount (None: it never had a hold)."""
        coupon = self._coupons.get(code)
        if coupon is None:
            raise CouponNotFound(field="code")
        return coupon.get("balance", 0), coupon.get("available")

    @staticmethod
    def _balance_moved(
        coupon: dict[str, Any], card: tuple[int, int | None], now_iso: str, verified: rules.Verification
    ) -> bool:
        """True when the only reason the write failed is that the balance (or the amount held) changed."""
        return (
            (coupon.get("balance", 0), coupon.get("available")) != card
            and _spendable(coupon.get("balance", 0), coupon.get("available")) > 0
            and _usable(coupon, now_iso, verified)
        )

    def _records(
        self,
        campaign: dict[str, Any],
        code: str,
        order: Order,
        principal: Principal,
        verified: rules.Verification,
        moment: datetime,
        taken: int,
        balance: int | None,
        hold_seconds: int | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        now_ms = int(moment.timestamp() * 1000)
        redemption_id = new_id("rdm", now_ms=now_ms)
        if hold_seconds is not None:
            # A hold's id seals what its capture or void needs (code, type, currency, amount, expiry), so
            # that each is one request with no read first (coupons.domain.hold_ids; docs/redemption.md).
            facts = hold_ids.HoldFacts(
                code=code,
                gift_card=campaign["type"] == CampaignType.GIFT_CARD,
                currency=order.currency,
                held_amount=taken,
                hold_expires_at=iso(hold_rules.expires_at(moment, hold_seconds)),
                coupon_type=None if campaign["type"] == CampaignType.GIFT_CARD else campaign["type"],
            )
            redemption_id = hold_ids.mint(self._tenant_key(), facts, now_ms=now_ms)
        answer: dict[str, Any] = {
            "redemption_id": redemption_id,
            "code": code,
            "campaign_id": campaign["campaign_id"],
            "merchant_id": order.merchant_id,
            "store_id": order.store_id,
            "order_id": order.order_id,
            "order_amount": order.order_amount,
            "currency": order.currency,
            "discount": taken,
            "coupon_state_after": "REDEEMED" if balance is None or balance == taken else "PARTIALLY_USED",
            "verification_method": verified.method.value,
            "redeemed_at": iso(moment),
        }
        if balance is not None:
            answer["balance_after"] = balance - taken
        if hold_seconds is not None:
            answer = hold_answer(
                answer, moment, hold_seconds, gift=campaign["type"] == CampaignType.GIFT_CARD
            )
        # Everything clearing needs travels on the record: clearing never reads back.
        redemption = {
            **answer,
            "kind": "REDEMPTION",
            "coupon_type": campaign["type"],
            "brand_id": campaign["brand_id"],
            "funding_rule_id": campaign.get("funding_rule_id"),
            "settlement_cycle": campaign["settlement_cycle"],
            "business_date": rules.business_date(moment, self._time_zone),
            "redeemed_by": str(principal),
            "holder": verified.owner,
            "refunded_amount": 0,
            "discount_reversed": 0,
        }
        if hold_seconds is not None:
            # Not cleared (kind HOLD): its capture makes it the redemption clearing takes (services/redemption_holds.py).
            redemption.update(kind="HOLD", hold_status=redemption.pop("status"))
        return {k: v for k, v in redemption.items() if v is not None}, answer

    # -- read and reverse (services/reversals.py) ----------------------------------------------

    def get(
        self,
        redemption_id: str,
        principal: Principal,
        *,
        limit: int = REVERSALS_PAGE,
        cursor: str | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
        """The redemption, a page of its reversals (oldest first) and the next page's cursor."""
        return self._reversals.get(redemption_id, principal, limit=limit, cursor=cursor)

    def reverse(
        self,
        redemption_id: str,
        principal: Principal,
        *,
        amount: int | None,
        restore_coupon: bool,
        completion: Completion | None = None,
    ) -> dict[str, Any]:
        """Refunds `amount` of the order (None: all that remains): services/reversals.py."""
        return self._reversals.reverse(
            redemption_id, principal, amount=amount, restore_coupon=restore_coupon, completion=completion
        )


def _spendable(balance: int, available: int | None) -> int:
    """What a gift card can pay now: its balance less what live holds reserve."""
    return balance if available is None else available


def _usable(coupon: dict[str, Any], now_iso: str, verified: rules.Verification) -> bool:
    """A gift card that could pay now, by this holder and proof, if it had the amount."""
    return (
        coupon.get("state") in ("ISSUED", "PARTIALLY_USED")
        and coupon["valid_from"] <= now_iso < coupon["valid_until"]
        and (verified.owner is None or coupon.get("user_id") == verified.owner)
        and (verified.totp_step is None or coupon.get("totp_step", -1) < verified.totp_step)
    )
