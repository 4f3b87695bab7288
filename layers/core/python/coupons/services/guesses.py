"""Code guessing and dynamic-code brute force at the checkout (coupons.domain.risk.guessing; docs/risk.md):
the caller's miss counters a lookup is gated on and a miss adds to, and the coupon's dynamic-code lock."""

from __future__ import annotations

from typing import Any

from coupons.data.coupons import CouponStore
from coupons.data.risk import GuessGate
from coupons.domain import verification
from coupons.domain.risk import guessing
from coupons.services.risk import Subjects


class Guesses:
    """`gate` None: nothing counted (a Redeemer made without one, as some tests and tools make it)."""

    def __init__(
        self,
        gate: GuessGate | None,
        policy: guessing.GuessPolicy | None = None,
        lockout: guessing.LockoutPolicy | None = None,
    ):
        self._gate = gate
        self._policy = policy or guessing.GuessPolicy()
        self._lockout = lockout or guessing.LockoutPolicy()

    def counters(self, subjects: Subjects | None, now: int) -> list[guessing.GuessCounter]:
        """The counters this caller's lookup is gated on (the API key's, and the IP's and device's given)."""
        if self._gate is None or subjects is None or subjects.api_key_id is None:
            return []
        return guessing.guess_counters(
            self._policy,
            at=now,
            api_key_id=subjects.api_key_id,
            client_ip=subjects.client_ip,
            device_id=subjects.device_id,
        )

    def refusal(self, now: int) -> guessing.TooManyGuesses:
        return guessing.refusal(self._policy, now)

    def missed(self, subjects: Subjects | None, now: int) -> None:
        """A code that passed its check character but does not exist: counted; past the limit, a 429."""
        counters = self.counters(subjects, now)
        if counters and not self._gate.miss(counters):
            raise self.refusal(now)

    def dynamic_code_failed(self, coupons: CouponStore, code: str, now: int) -> None:
        """A wrong dynamic code counts against its coupon: 5 within 15 minutes lock it (429). Raises."""
        state = coupons.record_totp_failure(code, now, self._lockout)
        if state is not None and guessing.locked(state, now):
            raise guessing.lock_refusal(state, now)
        raise verification.VerificationFailed()


def refuse_if_locked(coupon: dict[str, Any], now: int) -> None:
    """429 dynamic_code_locked when the coupon (as the failed write found it) is locked at `now`."""
    state = guessing.TotpFailures(
        coupon.get("totp_failures", 0), coupon.get("totp_failed_since", 0), coupon.get("totp_locked_until", 0)
    )
    if guessing.locked(state, now):
        raise guessing.lock_refusal(state, now)
