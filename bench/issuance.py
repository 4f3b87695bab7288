"""Issuance: DynamoDB requests and write units per coupon, throughput against moto for 1 vs 8 quota shards,
and the modelled ceiling of one hot campaign on real DynamoDB.

Runs the issuance service (coupons.services.issuance.Issuer, what the API's issue route calls) in this
process against moto (`mock_aws`), on a table made from coupons.data.schema.MAIN. Requests are counted
with a botocore `before-call.dynamodb.*` hook; every request asks for ReturnConsumedCapacity, and where
moto reports none (TransactWriteItems) the write units come from DynamoDB's cost model applied to the
items as stored before and after the call (see COST_MODEL, printed first). The counts are deterministic
(fixed clock, fixed-length ids and codes); the throughput figures are this machine's and noisy: read the
ratio.

    python bench/issuance.py            BENCH_ISSUES=400 BENCH_THREADS=8 (throughput run size)
"""

from __future__ import annotations

import math
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "layers" / "core" / "python")):
    if path not in sys.path:
        sys.path.insert(0, path)

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="eu-west-1",
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)

ISSUES = int(os.environ.get("BENCH_ISSUES", "400"))
THREADS = int(os.environ.get("BENCH_THREADS", "8"))
BULK = 500
ROUNDS = 3  # throughput: rounds of (1 shard, 8 shards), interleaved so machine load hits both alike

PARTITION_WCU_PER_S = 1000  # what one partition key takes at most (DynamoDB's per-partition limit)
TARGET_CLAIMS_PER_S = 20_000
TABLE_DEFAULT_QUOTA_WRU = 40_000  # default per-table on-demand quota (adjustable)
NEW_ON_DEMAND_TABLE_WRU = 4_000  # what a new on-demand table sustains before it scales or is pre-warmed

COST_MODEL = """\
Cost model. DynamoDB charges writes in write units (WCU, on-demand: WRU): a plain write is 1 unit per
1 KB (rounded up) of the larger of the item before and after; a write inside TransactWriteItems is 2 units
per KB (prepare + commit); each global secondary index whose key the item carries is written too, modelled
here at 1 unit per KB of the item (the index projects ALL attributes; if AWS bills it at the transactional
rate, add as much again). Item sizes follow DynamoDB's rules (attribute names + values; numbers ~1 byte
per 2 digits + 1; lists and maps 3 bytes + 1 per element) on the items as stored. moto reports no
ConsumedCapacity for TransactWriteItems, so the units below are computed from this model, not measured.
One partition key takes at most 1,000 write units/s: a campaign's remaining quantity is spread over
`shards` quota items (QUOTA#{campaign}#{i}), and the shard item is the only item every issuance of the
campaign writes (the coupon and the holding items are per code and per user), so one hot campaign's
ceiling is shards x 1,000 / (write units spent on its shard item per issuance). Streams cost no write
units. Left out: transaction conflicts between concurrent claims on one shard (they cancel and are retried
on another shard: more shards, fewer conflicts), and reads."""


# -- DynamoDB item sizes and write units --------------------------------------------------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind in ("S", "B"):
        return len(inner.encode() if isinstance(inner, str) else inner)
    if kind == "N":
        return _number_size(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: v}) for v in inner)
    raise ValueError(kind)


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(v) for name, v in (item or {}).items())


def units(size: int, per: int = 1024) -> int:
    return max(1, math.ceil(size / per))


class Meter:
    """Counts the DynamoDB requests a client makes and models the write units of its writes.

    The hooks are on the measured client only; item sizes are read through a second, unhooked client."""

    def __init__(self, client, raw_client, table: str, gsi_keys: list[tuple[str, str]]):
        self.raw, self.table, self.gsi_keys = raw_client, table, gsi_keys
        self.requests: Counter[str] = Counter()
        self.reported: Counter[str] = Counter()  # ConsumedCapacity as moto reported it, by operation
        self.wcu_items: Counter[str] = Counter()  # modelled base-table write units, by item kind
        self.wcu_gsi = 0
        self.sizes: dict[str, int] = {}  # largest size seen per item kind
        self.cancelled = 0
        self._local = threading.local()
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.*", self._ask_capacity)
        events.register("before-call.dynamodb.*", self._before)
        events.register("after-call.dynamodb.*", self._after)
        events.register("after-call-error.dynamodb.*", self._error)

    def reset(self) -> None:
        self.requests.clear()
        self.reported.clear()
        self.wcu_items.clear()
        self.wcu_gsi = 0
        self.cancelled = 0

    def _ask_capacity(self, params, model, **_):
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        self._local.params = params  # the API parameters (before-call sees the serialized request)

    def _get(self, key):
        return self.raw.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")

    def _writes(self, model, params) -> list[tuple[str, dict]]:
        """(kind of write, key) of every item the call writes."""
        if model.name == "TransactWriteItems":
            found = []
            for entry in params["TransactItems"]:
                ((kind, op),) = entry.items()
                key = op.get("Key") or {"pk": op["Item"]["pk"], "sk": op["Item"]["sk"]}
                found.append((kind, key))
            return found
        if model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            key = params.get("Key") or {"pk": params["Item"]["pk"], "sk": params["Item"]["sk"]}
            return [(model.name, key)]
        return []

    def _before(self, model, **_):
        self.requests[model.name] += 1
        writes = self._writes(model, self._local.params)
        self._local.pending = (model.name, [(kind, key, self._get(key)) for kind, key in writes])

    def _after(self, model, parsed, **_):
        capacity = parsed.get("ConsumedCapacity")
        if capacity:
            entries = capacity if isinstance(capacity, list) else [capacity]
            self.reported[model.name] += sum(e.get("CapacityUnits", 0) for e in entries)
        name, writes = getattr(self._local, "pending", (None, []))
        per_kb = 2 if name == "TransactWriteItems" else 1
        for kind, key, before in writes:
            after = self._get(key)
            size = max(item_size(before), item_size(after))
            label = key["pk"]["S"].split("#", 1)[0]
            self.sizes[label] = max(self.sizes.get(label, 0), size)
            if kind == "ConditionCheck":
                label += " (check)"
            self.wcu_items[label] += per_kb * units(size)
            image = after or before
            for hash_key, range_key in self.gsi_keys:
                if image and hash_key in image and range_key in image:
                    self.wcu_gsi += units(item_size(image))
        self._local.pending = (None, [])

    def _error(self, model, **_):
        self.cancelled += 1
        self._local.pending = (None, [])


# -- moto, made safe for threads ------------------------------------------------------------------------


def serialize_moto_dynamodb() -> None:
    """moto as the local stack runs it (infra.local.moto_fixes: a transaction backs up only the items it
    names, not whole tables), and one lock for every DynamoDB data call: moto is not safe under
    concurrent requests (the local stack serializes them too), and DynamoDB itself guarantees that a
    transaction is serializable with single-item operations."""
    from moto.dynamodb.models import DynamoDBBackend

    from infra.local import moto_fixes

    moto_fixes.apply()
    if getattr(DynamoDBBackend, "_bench_serialized", False):
        return
    lock = threading.RLock()

    def locked(method):
        def run(*args, **kwargs):
            with lock:
                return method(*args, **kwargs)

        return run

    for name in (
        "put_item",
        "update_item",
        "delete_item",
        "get_item",
        "query",
        "scan",
        "transact_write_items",
    ):
        setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))
    DynamoDBBackend._bench_serialized = True


# -- the runs -----------------------------------------------------------------------------------------------


def client():
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "dynamodb", region_name="eu-west-1", config=Config(max_pool_connections=THREADS * 2)
    )


class Bench:
    def __init__(self):
        from coupons.data.schema import MAIN

        self.schema = MAIN
        self.raw = client()
        self.tables = 0

    def fresh(self, shards: int, quantity: int, client_=None):
        """A new table (so no run pays for another's history), one ACTIVE campaign on it."""
        from coupons.data.campaigns import CampaignStore
        from coupons.data.coupons import CouponStore
        from coupons.domain.campaigns import CampaignTerms
        from coupons.domain.principals import Principal, Role
        from coupons.services import campaigns

        self.tables += 1
        table = f"bench-issuance-{self.tables}"
        self.raw.create_table(**self.schema.create_table_kwargs(table))
        admin = Principal(Role.ADMIN)
        setup = CampaignStore(self.raw, table)
        terms = {
            "name": "bench",
            "brand_id": "brand-bench",
            "type": "FIXED",
            "currency": "CNY",
            "amount": 1000,
            "valid_days": 30,
            "total_quantity": quantity,
            "shards": shards,
            "per_user_limit": 1,
        }
        created = campaigns.create(setup, CampaignTerms.model_validate(terms), admin)
        campaigns.transition(setup, created["campaign_id"], "activate", admin)
        measured = client_ or self.raw
        return table, created["campaign_id"], CampaignStore(measured, table), CouponStore(measured, table)

    def issuer(self, campaign_store, coupon_store, seed: int):
        from coupons.services.issuance import Issuer

        fixed = datetime(2026, 1, 1, tzinfo=UTC)
        return Issuer(campaign_store, coupon_store, clock=lambda: fixed, rng=random.Random(seed))


def costs(bench: Bench) -> dict[str, Any]:
    """Requests and write units: one issuance, a bulk of 500, and refusals once the campaign is drained."""
    from coupons.domain.principals import Principal, Role

    measured = client()
    out: dict[str, Any] = {}
    table, campaign_id, campaign_store, coupon_store = bench.fresh(8, 10_000, measured)
    gsi = [(i.partition_key, i.sort_key) for i in bench.schema.indexes]
    meter = Meter(measured, bench.raw, table, gsi)
    issuer = bench.issuer(campaign_store, coupon_store, seed=1)
    admin = Principal(Role.ADMIN)

    meter.reset()
    campaign = issuer.campaign_for(campaign_id, admin)
    out["first_call_reads"] = dict(meter.requests)

    meter.reset()
    issuer.issue_one(campaign, "user-single-000", segment=None, issued_by="admin")
    out["single"] = snapshot(meter, 1)

    meter.reset()
    users = [f"user-bulk-{i:05d}" for i in range(BULK)]
    answer = issuer.issue_many(campaign, users, segment=None, issued_by="admin")
    assert answer["issued"] == BULK, answer["refused"]
    out["bulk"] = snapshot(meter, BULK)
    out["sizes"] = dict(meter.sizes)
    out["reported"] = dict(meter.reported)

    # A drained campaign: 8 shards of 1 unit each, 8 issued, then refusals from a fresh container.
    table, campaign_id, campaign_store, coupon_store = bench.fresh(8, 8, measured)
    meter = Meter(measured, bench.raw, table, gsi)
    drainer = bench.issuer(campaign_store, coupon_store, seed=2)
    campaign = drainer.campaign_for(campaign_id, admin)
    drainer.issue_many(campaign, [f"early-{i}" for i in range(8)], segment=None, issued_by="admin")
    late = bench.issuer(campaign_store, coupon_store, seed=3)
    campaign = late.campaign_for(campaign_id, admin)
    refusals = []
    for i in range(3):
        meter.reset()
        answer = late.issue_many(campaign, [f"late-{i}"], segment=None, issued_by="admin")
        assert answer["results"][0]["reason"] == "campaign_exhausted"
        refusals.append(sum(meter.requests.values()))
    out["refusals"] = refusals
    return out


def snapshot(meter: Meter, issued: int) -> dict[str, Any]:
    return {
        "issued": issued,
        "requests": dict(meter.requests),
        "wcu_items": dict(meter.wcu_items),
        "wcu_gsi": meter.wcu_gsi,
        "cancelled": meter.cancelled,
    }


def throughput(bench: Bench) -> dict[int, list[float]]:
    """Issuances/s with THREADS concurrent "containers" (each its own Issuer and client), ISSUES distinct
    users, on a campaign that cannot run out; 1 and 8 shards interleaved over ROUNDS rounds."""
    from coupons.domain.principals import Principal, Role

    admin = Principal(Role.ADMIN)
    clients = [client() for _ in range(THREADS)]
    rates: dict[int, list[float]] = {1: [], 8: []}
    for round_ in range(ROUNDS):
        for shards in (1, 8):
            table, campaign_id, _, _ = bench.fresh(shards, ISSUES * 2)
            from coupons.data.campaigns import CampaignStore
            from coupons.data.coupons import CouponStore

            issuers = [
                bench.issuer(CampaignStore(c, table), CouponStore(c, table), seed=100 * round_ + i)
                for i, c in enumerate(clients)
            ]
            campaign = issuers[0].campaign_for(campaign_id, admin)
            barrier = threading.Barrier(THREADS)

            def work(i: int, campaign=campaign, issuers=issuers, barrier=barrier, shards=shards):
                barrier.wait()
                for n in range(i, ISSUES, THREADS):
                    issuers[i].issue_one(campaign, f"u-{shards}-{n:06d}", segment=None, issued_by="admin")

            started = time.perf_counter()
            with ThreadPoolExecutor(THREADS) as pool:
                list(pool.map(work, range(THREADS)))
            rates[shards].append(ISSUES / (time.perf_counter() - started))
            issued = sum(bench_counts(bench, table, campaign_id, shards))
            assert issued == ISSUES, (issued, ISSUES)
            bench.raw.delete_table(TableName=table)
    return rates


def bench_counts(bench: Bench, table: str, campaign_id: str, shards: int) -> list[int]:
    from coupons.data.campaigns import CampaignStore

    return CampaignStore(bench.raw, table).issued_counts(campaign_id, shards)


# -- the report ---------------------------------------------------------------------------------------------


def per_issue(result: dict[str, Any]) -> tuple[float, float, float]:
    n = result["issued"]
    requests = sum(result["requests"].values()) / n
    base = sum(result["wcu_items"].values()) / n
    return requests, base, result["wcu_gsi"] / n


def main() -> int:
    from moto import mock_aws

    print(COST_MODEL)
    print()
    with mock_aws():
        serialize_moto_dynamodb()
        bench = Bench()
        measured = costs(bench)
        rates = throughput(bench)

    sizes = measured["sizes"]
    print("Item sizes as stored (bytes): " + ", ".join(f"{k} {v}" for k, v in sorted(sizes.items())))
    reported = measured["reported"] or {}
    print(
        "moto's ConsumedCapacity: "
        + (", ".join(f"{k} {v:g}" for k, v in sorted(reported.items())) or "none reported")
        + " (TransactWriteItems: none, so write units below are modelled)"
    )
    print()
    print("DynamoDB requests and write units per issuance (Issuer, warm container: campaign cached)")
    print(
        f"  {'':22} {'requests':>9} {'WCU table':>10} {'WCU gsi':>8} {'WCU total':>10}  by item (per issuance)"
    )
    for label, key in (("single", "single"), (f"bulk of {BULK}", "bulk")):
        result = measured[key]
        requests, base, gsi = per_issue(result)
        items = ", ".join(f"{k} {v / result['issued']:g}" for k, v in sorted(result["wcu_items"].items()))
        ops = ", ".join(f"{k} {v}" for k, v in sorted(result["requests"].items()))
        print(f"  {label:22} {requests:9.2f} {base:10.2f} {gsi:8.2f} {base + gsi:10.2f}  {items}  [{ops}]")
    first = ", ".join(f"{k} {v}" for k, v in measured["first_call_reads"].items()) or "none"
    print(f"  first call of a container for a campaign also reads it once: {first}")
    print(
        "  refusals on a drained 8-shard campaign from a fresh container, requests each: "
        + ", ".join(map(str, measured["refusals"]))
        + " (every dry shard once, then none: dry shards are remembered)"
    )
    print()

    best = {s: max(v) for s, v in rates.items()}
    med = {s: statistics.median(v) for s, v in rates.items()}
    print(
        f"Issuances/s against moto in-process ({THREADS} threads, {ISSUES} distinct users, {ROUNDS} rounds)"
    )
    for s in (1, 8):
        print(
            f"  {s} shard{'s' if s > 1 else ' '}: median {med[s]:7.1f}/s  best {best[s]:7.1f}/s  runs "
            + ", ".join(f"{r:.1f}" for r in rates[s])
        )
    print(
        f"  8 shards / 1 shard = {med[8] / med[1]:.2f} (median), {best[8] / best[1]:.2f} (best), measured in this run."
        " moto serializes every request and has no per-partition limit, so this ratio can only show that"
        " choosing among shards costs nothing (about 1, give or take this machine's noise); the shards' gain"
        " is on real DynamoDB, modelled below."
    )
    print()

    single = measured["single"]
    hot = single["wcu_items"].get("QUOTA", 0) / single["issued"]
    total = sum(per_issue(single)[1:])
    print(
        f"Modelled ceiling for one hot campaign on real DynamoDB: shards x {PARTITION_WCU_PER_S:,} WCU/s"
        f" / {hot:g} WCU on the shard item per issuance"
    )
    verdict = ""
    for shards in (8, 40, 64):
        ceiling = shards * PARTITION_WCU_PER_S / hot
        verdict = "meets" if ceiling >= TARGET_CLAIMS_PER_S else "below"
        print(f"  {shards:3} shards: {ceiling:9,.0f} claims/s")
    print(
        f"  at the maximum (64 shards) the ceiling {verdict} the target of {TARGET_CLAIMS_PER_S:,} claims/s:"
        f" {'YES' if verdict == 'meets' else 'NO'}"
    )
    table_wcu = TARGET_CLAIMS_PER_S * total
    print(
        f"  but the whole table then takes {TARGET_CLAIMS_PER_S:,} x {total:g} WCU = {table_wcu:,.0f} WCU/s: above"
        f" the default per-table on-demand quota ({TABLE_DEFAULT_QUOTA_WRU:,} WRU/s; adjustable) and a new"
        f" on-demand table's {NEW_ON_DEMAND_TABLE_WRU:,} WRU/s before it scales; a flash drop of that size needs"
        " the quota raised and the table pre-warmed (warm throughput). Without that, the table caps at"
        f" {TABLE_DEFAULT_QUOTA_WRU / total:,.0f} claims/s."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
