"""Code guessing and dynamic-code brute force (point 6): window math, counter keys, lockout state. Pure.

Guessing. A code that fails its check character is refused without a read and is no guess (a typo,
not a probe of the code space). A code that passes it but does not exist is a miss; misses are counted
per API key and, when the request gives them, per end-user IP and device, in fixed windows. A caller
over a limit is answered 429 with Retry-After = the seconds left in the window, for every lookup (not
only misses: otherwise the guess that hits a real code would still succeed):
- every lookup asserts `attribute_not_exists(n) OR n < :limit` on each of its current miss counters
  (in a redemption: ConditionChecks in its one transaction, the 3 items rules.RESERVED keeps);
- a miss adds 1 under the same condition (one UpdateItem); when it fails, this miss is the one over.
So the first `limit` misses in a window are 404s and every lookup after them a 429 until it ends.

Dynamic codes. Six digits within ±1 step are 3 in 10⁶ per try: unlimited tries would find one within a
code's validity. Failures are counted on the coupon (its item already carries the TOTP step): 5
failures within `failure_window` lock it for `lock_seconds`; while locked, even the right code is
refused (429, Retry-After = what is left of the lock). The store applies `on_failure` as a conditional
write of the state it read (failures are off the hot path), and the redemption's coupon condition
gains `attribute_not_exists(totp_locked_until) OR totp_locked_until <= :now` (no extra item).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from coupons.domain.errors import DomainError, Kind
from coupons.domain.risk import keys


@dataclass(frozen=True)
class GuessPolicy:
    window_seconds: int = 600
    per_api_key: int = 200  # one key is a whole chain of tills: its honest misses add up
    per_ip: int = 20
    per_device: int = 20


@dataclass(frozen=True)
class GuessCounter:
    scope: str  # api_key / ip / device
    pk: str
    sk: str
    limit: int
    expires_at: int


def guess_counters(
    policy: GuessPolicy, *, at: int, api_key_id: str, client_ip: str | None, device_id: str | None
) -> list[GuessCounter]:
    """The miss counters a lookup is gated on and a miss adds to: the key's, then those given."""
    scopes = [("api_key", api_key_id, policy.per_api_key), ("ip", client_ip, policy.per_ip)]
    scopes.append(("device", device_id, policy.per_device))
    window = policy.window_seconds
    found = []
    for scope, value, limit in scopes:
        if value:
            pk, sk = keys.guess_key(scope, value, window, at)
            found.append(GuessCounter(scope, pk, sk, limit, keys.counter_ttl(at, window)))
    return found


def over_limit(counter: GuessCounter, misses: int | None) -> bool:
    """What the gate's condition refuses: `limit` misses already counted in this window."""
    return (misses or 0) >= counter.limit


class TooManyGuesses(DomainError):
    kind = Kind.TOO_MANY_REQUESTS
    code = "too_many_lookups"
    title = "Too many codes that do not exist were looked up; retry after the time given"

    def __init__(self, retry_after: int):
        # No field or scope named: which counter refused would tell a prober how to spread its guesses.
        super().__init__(retry_after=retry_after)
        self.retry_after = retry_after


def refusal(policy: GuessPolicy, at: int) -> TooManyGuesses:
    return TooManyGuesses(keys.retry_after(at, policy.window_seconds))


# --- dynamic-code lockout ------------------------------------------------------------------------


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    failure_window: int = 900  # failures older than this are forgotten
    lock_seconds: int = 900


@dataclass(frozen=True)
class TotpFailures:
    """What the coupon item keeps: failures since `first_at`, and the lock's end (0: not locked)."""

    failures: int = 0
    first_at: int = 0
    locked_until: int = 0


def locked(state: TotpFailures, now: int) -> bool:
    return now < state.locked_until


def on_failure(policy: LockoutPolicy, state: TotpFailures, now: int) -> tuple[TotpFailures, bool]:
    """The state after a wrong dynamic code at `now`, and whether the coupon is (now) locked. A failure
    while locked is not counted again: the lock is not extended by whoever keeps trying."""
    if locked(state, now):
        return state, True
    if state.failures == 0 or now - state.first_at >= policy.failure_window:
        state = TotpFailures(failures=1, first_at=now)
    else:
        state = replace(state, failures=state.failures + 1)
    if state.failures >= policy.max_failures:
        return TotpFailures(locked_until=now + policy.lock_seconds), True
    return state, False


class CouponLocked(DomainError):
    kind = Kind.TOO_MANY_REQUESTS
    code = "dynamic_code_locked"
    title = "Too many wrong dynamic codes: the coupon is locked for a while"

    def __init__(self, retry_after: int):
        super().__init__(field="dynamic_code", retry_after=retry_after)
        self.retry_after = retry_after


def lock_refusal(state: TotpFailures, now: int) -> CouponLocked:
    return CouponLocked(max(1, state.locked_until - now))
