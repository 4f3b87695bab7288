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
