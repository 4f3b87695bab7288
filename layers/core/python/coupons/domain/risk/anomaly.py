"""Anomaly detection (point 7): a baseline per merchant and per campaign of the redemption rate and the
average discount, kept from the stream, and the flag of a burst beyond it. Pure.

The statistic (docs/risk.md): per key, intervals of `interval_seconds` (5 minutes). For each interval
the observation is x = the number of redemptions (the rate) and, when x > 0, their average discount.
Each series keeps an exponentially weighted mean μ and variance σ² (West's incremental form):

    d = x − μ;  μ ← μ + α·d;  σ² ← (1 − α)·(σ² + α·d²)

and the interval is flagged when z = (x − μ) / σ > `z_threshold` (one-sided: bursts, not lulls), with
μ, σ from before x. α = 0.1 (the last ≈ 2/α − 1 = 19 intervals weigh most). σ is floored: for the rate
σ² ≥ max(μ, 1) (a Poisson count's variance is its mean, so a quiet merchant's 0 → 3 is no burst), for
the average discount σ ≥ 10 % of μ and ≥ 1 minor unit. Warm-up: the first `warmup` (12) intervals of
a key set μ, σ² to their plain running mean and variance and flag nothing. A flagged interval is
absorbed with α/10 only, so a burst does not teach the baseline that bursts are normal, while a lasting
change of level is adopted over ≈ 10× as many intervals.

Statistics, not money: floats are fine here; nothing computed here is ever posted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class DetectorConfig:
    interval_seconds: int = 300
    alpha: float = 0.1
    flagged_alpha: float = 0.01
    warmup: int = 12
    z_threshold: float = 4.0
    discount_floor: float = 0.10  # σ of the average discount at least this share of its mean


@dataclass(frozen=True)
class Series:
    n: int = 0
    mean: float = 0.0
    var: float = 0.0


@dataclass(frozen=True)
class Baseline:
    rate: Series = Series()
    discount: Series = Series()


@dataclass(frozen=True)
class Observation:
    count: int
    discount_sum: int  # minor units

    @property
    def average_discount(self) -> float | None:
        return self.discount_sum / self.count if self.count else None


@dataclass(frozen=True)
class Flag:
    series: str  # "rate" or "discount"
    z: float
    value: float
    mean: float


def _absorb(series: Series, x: float, alpha: float, warmup: int) -> Series:
    if series.n < warmup:  # running mean and variance (Welford): the EWMA's starting point
        n = series.n + 1
        d = x - series.mean
        mean = series.mean + d / n
        var = (series.var * series.n + d * (x - mean)) / n
        return Series(n, mean, var)
    d = x - series.mean
    return Series(series.n + 1, series.mean + alpha * d, (1 - alpha) * (series.var + alpha * d * d))


def z_score(series: Series, x: float, floor_var: float) -> float:
    return (x - series.mean) / math.sqrt(max(series.var, floor_var))


def update(config: DetectorConfig, state: Baseline, obs: Observation) -> tuple[Baseline, list[Flag]]:
    """The baseline after one interval's observation, and the flags it raised (empty: normal)."""
    flags: list[Flag] = []
    warm = state.rate.n >= config.warmup
    x = float(obs.count)
    if warm:
        z = z_score(state.rate, x, max(state.rate.mean, 1.0))
        if z > config.z_threshold:
            flags.append(Flag("rate", z, x, state.rate.mean))
    average = obs.average_discount
    if average is not None and state.discount.n >= config.warmup:
        floor = max(config.discount_floor * state.discount.mean, 1.0) ** 2
        z = z_score(state.discount, average, floor)
        if z > config.z_threshold:
            flags.append(Flag("discount", z, average, state.discount.mean))
    alpha = config.flagged_alpha if flags else config.alpha
    rate = _absorb(state.rate, x, alpha, config.warmup)
    discount = state.discount
    if average is not None:
        discount = _absorb(state.discount, average, alpha, config.warmup)
    return replace(state, rate=rate, discount=discount), flags


def intervals(
    events: Iterable[tuple[int, str, int]], config: DetectorConfig
) -> dict[str, list[tuple[int, Observation]]]:
    """(at, key, discount) events → per key, one observation per interval from its first to the last
    interval seen, empty ones included (a rate's baseline must see the quiet intervals too)."""
    sums: dict[str, dict[int, list[int]]] = {}
    last = None
    for at, key, discount in events:
        slot = at // config.interval_seconds
        cell = sums.setdefault(key, {}).setdefault(slot, [0, 0])
        cell[0] += 1
        cell[1] += discount
        last = slot if last is None else max(last, slot)
    out: dict[str, list[tuple[int, Observation]]] = {}
    for key, slots in sums.items():
        out[key] = [
            (slot, Observation(*slots.get(slot, (0, 0)))) for slot in range(min(slots), (last or 0) + 1)
        ]
    return out


# -- on the stream: one key's state, one redemption at a time -------------------------------------

# Quiet intervals between two redemptions of a key are absorbed as zeros, at most a day's worth: a key
# silent for a week is not walked through 2,000 empty intervals.
MAX_QUIET = 288
# The average discount of the open interval is judged from this many redemptions on (one redemption
# with a big discount is no burst).
MIN_DISCOUNT_COUNT = 5


@dataclass(frozen=True)
class Tracker:
    """One key's open interval (its redemptions so far) and the baseline of the intervals before it."""

    slot: int | None = None
    count: int = 0
    discount_sum: int = 0
    flagged: bool = False  # this interval flagged already: a burst is flagged once, absorbed with α/10
    baseline: Baseline = Baseline()


def _close(config: DetectorConfig, tracker: Tracker, slot: int) -> Baseline:
    """The baseline once the open interval and the quiet ones up to `slot` are over."""
    alpha = config.flagged_alpha if tracker.flagged else config.alpha
    base = tracker.baseline
    rate = _absorb(base.rate, float(tracker.count), alpha, config.warmup)
    discount = base.discount
    if tracker.count:
        discount = _absorb(base.discount, tracker.discount_sum / tracker.count, alpha, config.warmup)
    base = Baseline(rate, discount)
    for _ in range(min(slot - (tracker.slot or slot) - 1, MAX_QUIET)):
        base, _flags = update(config, base, Observation(0, 0))  # a zero never flags (one-sided)
    return base


def observe(config: DetectorConfig, tracker: Tracker, at: int, discount: int) -> tuple[Tracker, list[Flag]]:
    """The key's state after one redemption at `at` (epoch seconds), and the flags it raised: the open
    interval is judged as it fills (a burst is flagged while it happens, not when it is over), against
    the baseline of the intervals before it, at most once per interval. A record later than the open
    interval closes it; an earlier one (another shard's, late) counts in the open one."""
    slot = at // config.interval_seconds
    if tracker.slot is None:
        tracker = replace(tracker, slot=slot)
    elif slot > tracker.slot:
        tracker = Tracker(slot=slot, baseline=_close(config, tracker, slot))
    tracker = replace(tracker, count=tracker.count + 1, discount_sum=tracker.discount_sum + discount)
    if tracker.flagged:
        return tracker, []
    flags: list[Flag] = []
    base = tracker.baseline
    if base.rate.n >= config.warmup:
        z = z_score(base.rate, float(tracker.count), max(base.rate.mean, 1.0))
        if z > config.z_threshold:
            flags.append(Flag("rate", z, float(tracker.count), base.rate.mean))
    if tracker.count >= MIN_DISCOUNT_COUNT and base.discount.n >= config.warmup:
        average = tracker.discount_sum / tracker.count
        z = z_score(base.discount, average, max(config.discount_floor * base.discount.mean, 1.0) ** 2)
        if z > config.z_threshold:
            flags.append(Flag("discount", z, average, base.discount.mean))
    return (replace(tracker, flagged=True) if flags else tracker), flags


def tracker_to_json(tracker: Tracker) -> str:
    import json
    from dataclasses import asdict

    return json.dumps(asdict(tracker), separators=(",", ":"))


def tracker_from_json(text: str | None) -> Tracker:
    import json

    if not text:
        return Tracker()
    data = json.loads(text)
    base = data.pop("baseline")
    return Tracker(**data, baseline=Baseline(Series(**base["rate"]), Series(**base["discount"])))


def flag_reason(key: str, flags: list[Flag]) -> str:
    return "; ".join(
        f"{key}: {f.series} {f.value:.1f} against a baseline of {f.mean:.1f} (z {f.z:.1f})" for f in flags
    )
