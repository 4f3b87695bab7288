"""Risk backtest (`make risk-backtest`): a seeded, labelled day of traffic — normal redemptions and
issuances with injected bursts (刷单), farms (套券, at redemption and at issuance), store hopping and
code guessing — replayed through the rules (guards conditioned as the store would: risk/memory.py), the
guessing counters and the EWMA detector. Prints precision and recall per kind of attack.

An event counts as caught by the mechanism meant for its kind: the rule aimed at it (DENY or REVIEW),
the guessing counter (429), or the detector (a merchant interval it flags catches that interval's
redemptions). precision(kind) = caught events of that kind / events that mechanism caught;
recall(kind) = caught events of that kind / events of that kind. Usage: bench/risk_backtest.py [--seed N]
"""

from __future__ import annotations

import argparse
import random
import sys
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core" / "python"))

from coupons.domain.risk import anomaly, guessing  # noqa: E402
from coupons.domain.risk.examples import BRUSHING, FARMING, ISSUANCE_FARMING, STORE_HOPPING, rule_set  # noqa: E402
from coupons.domain.risk.memory import MemoryTable, evaluate  # noqa: E402
from coupons.domain.risk.plan import Context  # noqa: E402
from coupons.domain.risk.rules import Event  # noqa: E402

T0 = 1_767_225_600
DAY = 86_400
KIND_OF_RULE = {
    "farm-device": "farm",
    "store-hopping": "hopping",
    "merchant-burst": "burst",
    "claim-farm": "claim_farm",
}


@dataclass
class Row:
    at: int
    kind: str  # normal / burst / farm / hopping / claim_farm / guessing
    event: str  # redeem / issue / miss / hit
    ctx: Context | None = None
    api_key: str = ""
    caught_by: str | None = None


def _ip(device: str) -> str:
    return f"10.{zlib.crc32(device.encode()) % 250}.0.1"  # stable across runs (hash() is salted)


def generate(seed: int) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    merchants = [f"m{i}" for i in range(20)]
    rate = {m: rng.uniform(0.05, 0.6) for m in merchants}  # redemptions per minute
    users = [f"u{i}" for i in range(4000)]
    device_of = {u: f"dev-{u}" for u in users}
    for u in rng.sample(users, 300):  # families: two users share a phone
        device_of[u] = device_of[rng.choice(users)]

    def redeem(at, kind, merchant, user, device, store=None, discount=None):
        store = store or f"s{rng.randrange(3)}"
        amount = discount if discount is not None else rng.choice((300, 500, 500, 1000))
        ctx = Context(
            Event.REDEMPTION,
            at,
            user,
            "cmp-1",
            f"C{len(rows)}",
            amount,
            "CNY",
            merchant,
            store,
            device,
            _ip(device),
            "198.51.100.1",
        )
        rows.append(Row(at, kind, "redeem", ctx, api_key=f"key-{merchant}"))

    for m in merchants:
        at = T0
        while True:
            at += int(rng.expovariate(rate[m] / 60)) + 1
            if at >= T0 + DAY:
                break
            u = rng.choice(users)
            redeem(at, "normal", m, u, device_of[u])
            if rng.random() < 0.01:  # an honest till mistypes a code that still passes its check
                rows.append(
                    Row(
                        at + 1,
                        "normal",
                        "miss",
                        api_key=f"key-{m}",
                        ctx=Context(
                            Event.REDEMPTION,
                            at + 1,
                            u,
                            "cmp-1",
                            "",
                            0,
                            "CNY",
                            m,
                            None,
                            device_of[u],
                            _ip(device_of[u]),
                        ),
                    )
                )
    for _ in range(600):  # normal issuance: one user claims on their own phone
        u = rng.choice(users)
        at = T0 + rng.randrange(DAY)
        rows.append(
            Row(
                at,
                "normal",
                "issue",
                Context(Event.ISSUANCE, at, u, "cmp-1", "", 500, "CNY", device_id=device_of[u]),
            )
        )
    for i in range(4):  # brushing: a merchant redeeming far faster than its tills, fake users
        m, start = rng.choice(merchants), T0 + rng.randrange(DAY - 1200)
        for j in range(rng.randrange(150, 300)):
            redeem(start + rng.randrange(600), "burst", m, f"fake{i}-{j}", f"fdev{i}-{j}", discount=1000)
    for i in range(5):  # farming: one device redeeming coupons of many users within an hour
        device, start = f"farm-{i}", T0 + rng.randrange(DAY - 3600)
        for j in range(rng.randrange(10, 40)):
            redeem(start + rng.randrange(3600), "farm", rng.choice(merchants), f"mule{i}-{j}", device)
    for i in range(5):  # store hopping: one user at a dozen stores in ten minutes
        user, m, start = f"hop{i}", rng.choice(merchants), T0 + rng.randrange(DAY - 600)
        for j in range(12):
            redeem(start + j * 45, "hopping", m, user, f"hopdev{i}", store=f"s{j}")
    for i in range(5):  # claim farming: one device claiming coupons for many users
        device, start = f"claim-{i}", T0 + rng.randrange(DAY - 3600)
        for j in range(rng.randrange(15, 50)):
            at = start + rng.randrange(3600)
            rows.append(
                Row(
                    at,
                    "claim_farm",
                    "issue",
                    Context(Event.ISSUANCE, at, f"cm{i}-{j}", "cmp-1", "", 500, "CNY", device_id=device),
                )
            )
    for i in range(3):  # guessing: codes that pass the check character, from one IP behind a key
        start, ip = T0 + rng.randrange(DAY - 3600), f"203.0.113.{i}"
        for j in range(300):
            at = start + j * 10
            rows.append(
                Row(
                    at,
                    "guessing",
                    "miss",
                    api_key=f"key-{rng.choice(merchants)}",
                    ctx=Context(Event.REDEMPTION, at, "", "cmp-1", "", 0, "CNY", client_ip=ip),
                )
            )
    rows.sort(key=lambda r: r.at)
    return rows


def replay(rows: list[Row]) -> None:
    rules = rule_set(FARMING, STORE_HOPPING, BRUSHING, ISSUANCE_FARMING)
    table = MemoryTable()
    policy = guessing.GuessPolicy()
    misses: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        if row.event == "miss":
            counters = guessing.guess_counters(
                policy,
                at=row.at,
                api_key_id=row.api_key,
                client_ip=row.ctx.client_ip,
                device_id=row.ctx.device_id,
            )
            if any(guessing.over_limit(c, misses[(c.pk, c.sk)]) for c in counters):
                row.caught_by = "guessing"
            else:
                for c in counters:
                    misses[(c.pk, c.sk)] += 1
            continue
        decision = evaluate(rules, row.ctx, table).decision
        if decision.rule_id is not None:
            row.caught_by = KIND_OF_RULE[decision.rule_id]
    # The detector, on what was redeemed (denied redemptions never reach the stream).
    config = anomaly.DetectorConfig()
    redeemed = [r for r in rows if r.event == "redeem" and r.caught_by not in ("farm",)]
    series = anomaly.intervals(((r.at, r.ctx.merchant_id, r.ctx.amount) for r in redeemed), config)
    flagged: set[tuple[str, int]] = set()
    for merchant, observations in series.items():
        state = anomaly.Baseline()
        for slot, obs in observations:
            state, flags = anomaly.update(config, state, obs)
            if flags:
                flagged.add((merchant, slot))
    for r in redeemed:
        if r.caught_by is None and (r.ctx.merchant_id, r.at // config.interval_seconds) in flagged:
            r.caught_by = "burst"  # the detector's flag holds the merchant's settlement for review


def report(rows: list[Row]) -> list[str]:
    kinds = ["burst", "farm", "hopping", "claim_farm", "guessing"]
    lines = [f"{'kind':<11} {'events':>7} {'caught':>7} {'flagged':>8} {'precision':>9} {'recall':>7}"]
    for kind in kinds:
        labelled = sum(1 for r in rows if r.kind == kind)
        by_mechanism = [r for r in rows if r.caught_by == kind]
        caught = sum(1 for r in by_mechanism if r.kind == kind)
        precision = caught / len(by_mechanism) if by_mechanism else 0.0
        recall = caught / labelled if labelled else 0.0
        lines.append(
            f"{kind:<11} {labelled:>7} {caught:>7} {len(by_mechanism):>8} {precision:>9.3f} {recall:>7.3f}"
        )
    normal = [r for r in rows if r.kind == "normal"]
    false = sum(1 for r in normal if r.caught_by)
    lines.append(f"normal events {len(normal)}, caught by any mechanism {false} ({false / len(normal):.4%})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=18)
    seed = parser.parse_args().seed
    rows = generate(seed)
    replay(rows)
    print(f"risk backtest, seed {seed}: {len(rows)} events over one day")
    print("\n".join(report(rows)))


if __name__ == "__main__":
    main()
