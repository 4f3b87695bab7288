"""Redemption hot path: DynamoDB requests and capacity units per operation, in-process latency against moto,
and what 1M redemptions cost at list prices.

The API function's real handler runs in this process (imported as tests/integration/conftest.py does)
against moto (`mock_aws`) and a table made from coupons.data.schema.MAIN. Every operation is timed warm:
a redemption of the same campaign has already run in this "container", so the campaign's terms and the
caller's API key are cached, as they are in a warm Lambda.

Counted: requests to DynamoDB (a botocore `before-call.dynamodb` hook on the function's shared client).
Capacity: moto 5.x reports no ConsumedCapacity for TransactWriteItems (and a constant for reads), so
write/read request units are computed from DynamoDB's cost model, with every item's size measured from
the items as stored before and after the call (see COST_MODEL, printed first).

  BENCH_RUNS=300 python bench/redemption.py        (runs per operation for the latency figures)
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "layers" / "core" / "python")):
    if path not in sys.path:
        sys.path.insert(0, path)

RUNS = int(os.environ.get("BENCH_RUNS", "300"))
ACCOUNT, REGION = "123456789012", "eu-west-1"  # moto's default account; the region the tests use

# -- list prices -----------------------------------------------------------------------------------
# us-east-1 (N. Virginia) public list prices, as known on PRICES_DATE; no free tier, no savings plans.
PRICES_DATE = "2025-06-01"
PRICES_REGION = "us-east-1"
APIGW_REST_PER_M_REQUESTS = 3.50  # API Gateway REST API, first 333 million requests / month
LAMBDA_PER_M_REQUESTS = 0.20
LAMBDA_ARM64_PER_GB_SECOND = 0.0000133334  # arm64 (Graviton), first 7.5 billion GB-s / month
LAMBDA_MEMORY_GB = 512 / 1024
DDB_ON_DEMAND_PER_M_WRU = 0.625  # on-demand write request unit (after the 50 % cut of 2024-11-01)
DDB_ON_DEMAND_PER_M_RRU = 0.125  # on-demand read request unit

COST_MODEL = f"""\
Cost model. Prices: {PRICES_REGION} list prices as known on {PRICES_DATE} (no free tier, no discounts):
API Gateway REST ${APIGW_REST_PER_M_REQUESTS:.2f}/1M requests; Lambda arm64 at {LAMBDA_MEMORY_GB * 1024:.0f} MB
${LAMBDA_PER_M_REQUESTS:.2f}/1M requests + ${LAMBDA_ARM64_PER_GB_SECOND:.10f}/GB-s, duration billed in 1 ms steps
(here: this machine's in-process p50 against moto, rounded UP to the ms; real DynamoDB adds a network
round trip per request, moto's own work is in the figure instead); DynamoDB on-demand
${DDB_ON_DEMAND_PER_M_WRU:.3f}/1M write request units (WRU), ${DDB_ON_DEMAND_PER_M_RRU:.3f}/1M read request units (RRU).
Capacity: moto reports none for TransactWriteItems, so units are computed from DynamoDB's cost model on
item sizes measured from the stored items (DynamoDB's size rules: attribute names + values, numbers
~1 byte per 2 digits + 1, lists/maps 3 bytes + 1 per element): a transactional write costs 2 WRU per
1 KB (rounded up) of the larger of the item before and after, per item; a ConditionCheck is billed as a
transactional write of the item it checks; a cancelled transaction (a replay, a conflict) is counted as
if committed, an upper bound (AWS bills at least its prepare phase); a plain write 1 WRU per KB; a
strongly consistent read 1 RRU per 4 KB (eventually consistent 0.5), a Query on the sum of the items it
returns. Left out: storage ($/GB-month), Streams reads by Lambda triggers (free), CloudWatch Logs,
data transfer, the clearing function that consumes the stream."""


# -- DynamoDB item sizes ---------------------------------------------------------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value in the low-level format ({"S": ...}, {"N": ...}, ...)."""
    (kind, inner) = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    raise ValueError(kind)


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def units(size: int, per: int) -> int:
    return max(1, math.ceil(size / per))


# -- metering --------------------------------------------------------------------------------------


@dataclass
class Call:
    operation: str
    wru: float = 0.0
    rru: float = 0.0
    detail: list[str] = field(default_factory=list)
    moto_capacity: Any = None


class Meter:
    """Hooks on the function's DynamoDB client: counts every request (before-call); when `measuring`, also
    reads the items a write touches before and after it (through a separate client) to size them."""

    def __init__(self, function_client, raw_client, table: str):
        self.calls: list[Call] = []
        self.measuring = False
        self._raw, self._table = raw_client, table
        self._pending: list[tuple[str, dict, dict | None, dict | None]] = []
        events = function_client.meta.events
        events.register("provide-client-params.dynamodb", self._params)
        events.register("before-call.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    def _get(self, key: dict) -> dict | None:
        return self._raw.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")

    def _params(self, params, model, **_):
        self._last_params = params
        if self.measuring:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")  # to show what moto reports

    def _before(self, model, **_):
        self.calls.append(Call(model.name))
        if not self.measuring:
            return
        params = self._last_params
        self._pending = []
        actions: list[tuple[str, dict]] = []
        if model.name == "TransactWriteItems":
            actions = [next(iter(a.items())) for a in params["TransactItems"]]
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            actions = [(model.name, params)]
        for kind, op in actions:
            key = op.get("Key") or {"pk": op["Item"]["pk"], "sk": op["Item"]["sk"]}
            proposed = op.get("Item")
            self._pending.append((kind, key, self._get(key), proposed))

    def _after(self, model, parsed, **_):
        if not self.measuring:
            return
        call = self.calls[-1]
        call.moto_capacity = parsed.get("ConsumedCapacity")
        transactional = model.name == "TransactWriteItems"
        for kind, key, before, proposed in self._pending:
            after = self._get(key)
            size = max(item_size(before), item_size(after), item_size(proposed))
            wru = units(size, 1024) * (2 if transactional else 1)
            call.wru += wru
            call.detail.append(f"{kind} {key['pk']['S'].split('#')[0]} {size} B → {wru} WRU")
        self._pending = []
        if model.name == "GetItem":
            consistent = self._last_params.get("ConsistentRead", False)
            size = item_size(parsed.get("Item"))
            call.rru += units(size, 4096) * (1 if consistent else 0.5)
            call.detail.append(f"GetItem {size} B → {call.rru:g} RRU")
        elif model.name in ("Query", "Scan"):
            consistent = self._last_params.get("ConsistentRead", False)
            size = sum(item_size(i) for i in parsed.get("Items", []))
            call.rru += units(size, 4096) * (1 if consistent else 0.5)
            call.detail.append(f"{model.name} {size} B → {call.rru:g} RRU")
        elif model.name == "BatchGetItem":
            consistent = any(
                v.get("ConsistentRead") for v in self._last_params.get("RequestItems", {}).values()
            )
            for items in parsed.get("Responses", {}).values():
                for i in items:
                    call.rru += units(item_size(i), 4096) * (1 if consistent else 0.5)
            call.detail.append(f"BatchGetItem → {call.rru:g} RRU")


class MotoClock:
    """Time spent inside moto's DynamoDB request handling (its server side), so that the function's own
    time can be told apart from the emulator's."""

    def __init__(self):
        from moto.dynamodb.responses import DynamoHandler

        self.seconds = 0.0
        original = DynamoHandler.call_action
        clock = self

        def call_action(handler):
            started = time.perf_counter()
            try:
                return original(handler)
            finally:
                clock.seconds += time.perf_counter() - started

        DynamoHandler.call_action = call_action


class TableKeeper:
    """Keeps the table as it was after the warm-up: after each run (untimed) the items the run made are
    deleted and moto's stream history is dropped (nothing consumes it here). moto 5.2.5 deep-copies a table
    with its whole stream history in every TransactWriteItems and scans the whole table for a Query; on a
    table that grew with every run, those would be most of the time measured. Real DynamoDB's latency does
    not depend on the table's size."""

    def __init__(self, ddb, table: str):
        from moto.dynamodb.models import dynamodb_backends

        self._ddb, self._table = ddb, table
        self._backend = dynamodb_backends[ACCOUNT][REGION]
        self._kept = self._keys()

    def _keys(self) -> set[tuple[str, str]]:
        keys, start = set(), None
        while True:
            page = self._ddb.scan(
                TableName=self._table,
                ProjectionExpression="pk, sk",
                **({"ExclusiveStartKey": start} if start else {}),
            )
            keys |= {(i["pk"]["S"], i["sk"]["S"]) for i in page["Items"]}
            start = page.get("LastEvaluatedKey")
            if not start:
                return keys

    def restore(self) -> None:
        for pk, sk in self._keys() - self._kept:
            self._ddb.delete_item(TableName=self._table, Key={"pk": {"S": pk}, "sk": {"S": sk}})
        # Looked up each time: a cancelled transaction puts moto's copy of the table in the original's place.
        shard = getattr(self._backend.tables[self._table], "stream_shard", None)
        if shard is not None:
            shard.items.clear()


# -- the scenarios ---------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: Counter
    wru: float
    rru: float
    statuses: Counter
    latencies_ms: list[float]
    function_ms: list[float]  # the same runs without moto's own time
    detail: list[str]
    moto_capacity: list[Any]


def main() -> int:
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="eu-west-1",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_DEV="false",
        POWERTOOLS_METRICS_NAMESPACE="CouponClearing/bench",
        POWERTOOLS_LOG_LEVEL="ERROR",
        TENANT="bench",
        TENANT_TIME_ZONE="Asia/Shanghai",
    )
    os.environ.pop("AWS_PROFILE", None)
    import boto3
    from moto import mock_aws

    from coupons.data.schema import MAIN
    from infra.local import moto_fixes
    from tests.integration.conftest import TABLE, TENANT_KEY, Api, load_api_handler
    from tests.integration.test_api_plumbing import campaign_body

    moto_fixes.apply()  # moto as the local stack (`make local`) runs it
    os.environ[MAIN.env_var] = TABLE
    print(COST_MODEL)
    print()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(**MAIN.create_table_kwargs(TABLE))
        secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="coupons-bench-tenant-key", SecretString=TENANT_KEY.decode()
        )
        os.environ["TENANT_SECRET_ARN"] = secret["ARN"]
        api = Api(load_api_handler(), ddb)
        return run(api, ddb, TABLE, campaign_body)


def run(api, ddb, table: str, campaign_body) -> int:
    import dependencies
    from infra.admin_key import create_admin_key

    admin = create_admin_key(table, description="bench admin", dynamodb_client=ddb)
    made = api.call("POST", "/v1/api-keys", api_key=admin, body={"principal": "merchant:m-001"})
    assert made.status == 201, made.raw
    merchant = made.json["api_key"]

    def campaign(**changes) -> str:
        body = {k: v for k, v in campaign_body(**changes).items() if v is not None}
        body.update(total_quantity=1_000_000, shards=4)
        created = api.call("POST", "/v1/campaigns", api_key=admin, body=body)
        assert created.status == 201, created.raw
        campaign_id = created.json["campaign_id"]
        assert api.call("POST", f"/v1/campaigns/{campaign_id}/activate", api_key=admin).status == 200
        return campaign_id

    fixed = campaign()  # 10 off orders of 50 or more (events/api/create_campaign.json)
    gift = campaign(type="GIFT_CARD", amount=50000, min_order=None)

    def issue(campaign_id: str) -> str:
        answer = api.call(
            "POST",
            f"/v1/campaigns/{campaign_id}/coupons",
            api_key=admin,
            body={"user_id": f"u-{uuid.uuid4().hex[:12]}"},
        )
        assert answer.status == 201, answer.raw
        return answer.json["code"]

    def order(code: str, **extra) -> dict:
        return {
            "code": code,
            "merchant_id": "m-001",
            "store_id": "s-1",
            "order_id": f"o-{uuid.uuid4().hex[:12]}",
            "order_amount": 10000,
            "currency": "CNY",
            **extra,
        }

    def typo(code: str) -> str:
        return code[:5] + ("0" if code[5] != "0" else "1") + code[6:]

    def redeem(body: dict, key: str | None = None):
        headers = {"Idempotency-Key": key} if key else None
        return api.call("POST", "/v1/redemptions", api_key=merchant, body=body, headers=headers)

    # Warm the "container": the campaigns' terms and the merchant's key are cached after these.
    for campaign_id in (fixed, gift):
        assert redeem(order(issue(campaign_id))).status == 201

    meter = Meter(dependencies.coupons()._client, ddb, table)
    moto = MotoClock()
    keeper = TableKeeper(ddb, table)

    # Each scenario: (prepare → state for one run, act(state) → Answer). Only `act` is timed and metered.
    def prepared_redemption() -> dict:
        body = order(issue(fixed))
        key = f"till-{uuid.uuid4()}"
        first = redeem(body, key)
        assert first.status == 201, first.raw
        return {"body": body, "key": key, "id": first.json["redemption_id"]}

    def prepared_hold(campaign_id: str) -> str:
        first = redeem(order(issue(campaign_id), capture=False), f"till-{uuid.uuid4()}")
        assert first.status == 201, first.raw
        return first.json["redemption_id"]

    def hold_action(rid: str, action: str, body: dict | None = None):
        headers = {"Idempotency-Key": f"{action}-{uuid.uuid4()}"}
        return api.call(
            "POST", f"/v1/redemptions/{rid}/{action}", api_key=merchant, body=body, headers=headers
        )

    scenarios: list[tuple[str, Callable[[], Any], Callable[[Any], Any]]] = [
        (
            "redeem FIXED, Idempotency-Key (warm)",
            lambda: (order(issue(fixed)), f"till-{uuid.uuid4()}"),
            lambda s: redeem(s[0], s[1]),
        ),
        ("redeem FIXED, no key (warm)", lambda: order(issue(fixed)), lambda s: redeem(s)),
        ("replay (same key, same body)", prepared_redemption, lambda s: redeem(s["body"], s["key"])),
        (
            "conflict (already redeemed, new key)",
            prepared_redemption,
            lambda s: redeem({**s["body"], "order_id": "o-other"}, f"till-{uuid.uuid4()}"),
        ),
        (
            "quote FIXED",
            lambda: order(issue(fixed)),
            lambda s: api.call("POST", "/v1/redemptions/quote", api_key=merchant, body=s),
        ),
        (
            "reversal, whole order, coupon back (key)",
            prepared_redemption,
            lambda s: api.call(
                "POST",
                f"/v1/redemptions/{s['id']}/reversals",
                api_key=merchant,
                headers={"Idempotency-Key": f"refund-{uuid.uuid4()}"},
            ),
        ),
        (
            "reversal, part of the order (key)",
            prepared_redemption,
            lambda s: api.call(
                "POST",
                f"/v1/redemptions/{s['id']}/reversals",
                api_key=merchant,
                body={"amount": 2500},
                headers={"Idempotency-Key": f"refund-{uuid.uuid4()}"},
            ),
        ),
        (
            "mistyped code (check character)",
            lambda: order(typo(issue(fixed))),
            lambda s: redeem(s, f"till-{uuid.uuid4()}"),
        ),
        (
            "redeem GIFT_CARD, Idempotency-Key",
            lambda: (order(issue(gift)), f"till-{uuid.uuid4()}"),
            lambda s: redeem(s[0], s[1]),
        ),
        # Redemption holds (docs/redemption.md "Holds"): placing one, then ending it.
        (
            "hold FIXED (capture false), key",
            lambda: (order(issue(fixed), capture=False), f"till-{uuid.uuid4()}"),
            lambda s: redeem(s[0], s[1]),
        ),
        (
            "hold GIFT_CARD (capture false), key",
            lambda: (order(issue(gift), capture=False), f"till-{uuid.uuid4()}"),
            lambda s: redeem(s[0], s[1]),
        ),
        (
            "capture a FIXED hold, key",
            lambda: prepared_hold(fixed),
            lambda s: hold_action(s, "capture"),
        ),
        (
            "capture part of a GIFT_CARD hold, key",
            lambda: prepared_hold(gift),
            lambda s: hold_action(s, "capture", {"amount": 6000}),
        ),
        ("void a FIXED hold, key", lambda: prepared_hold(fixed), lambda s: hold_action(s, "void")),
    ]

    # The same redemption with 3 and 6 risk rules (docs/risk.md): what the guards add to the one request.
    risky = {**order("x"), "device_id": "d-bench", "client_ip": "198.51.100.7"}
    for rules in (RULES_3, RULES_6):
        scenarios.append(
            (
                f"redeem FIXED, key, {len(rules)} risk rules",
                lambda: ({**risky, **order(issue(fixed))}, f"till-{uuid.uuid4()}"),
                lambda s: redeem(s[0], s[1]),
                rules,
            )
        )

    results = []
    current_rules: list | None = None
    for name, prepare, act, *rules in scenarios:
        wanted = rules[0] if rules else []
        if wanted != current_rules:
            stored = api.call("POST", "/v1/risk/rules", api_key=admin, body={"rules": wanted})
            assert stored.status == 201, stored.raw
            current_rules = wanted
            assert redeem({**risky, **order(issue(fixed))}).status == 201  # the rules' first use
            keeper = TableKeeper(ddb, table)  # the rule set stays; each run's counters go
        # Metered: a few runs with item sizes read around each write (not timed).
        metered: list[list[Call]] = []
        statuses: Counter = Counter()
        for _ in range(3):
            state = prepare()
            meter.calls, meter.measuring = [], True
            answer = act(state)
            meter.measuring = False
            statuses[answer.status] += 1
            metered.append(meter.calls)
            meter.calls = []  # the next run's preparation is not this run's (its API key read, 60 s cache)
            keeper.restore()
        # Timed: RUNS runs, only the request counter on.
        latencies, own, counts = [], [], Counter()
        for _ in range(RUNS):
            state = prepare()
            meter.calls, moto.seconds = [], 0.0
            started = time.perf_counter()
            answer = act(state)
            elapsed = time.perf_counter() - started
            latencies.append(elapsed * 1000)
            own.append((elapsed - moto.seconds) * 1000)
            statuses[answer.status] += 1
            counts[tuple(c.operation for c in meter.calls)] += 1
            keeper.restore()
        last = metered[-1]
        assert all([c.operation for c in m] == [c.operation for c in last] for m in metered), (name, metered)
        results.append(
            Result(
                name,
                counts,
                sum(c.wru for c in last),
                sum(c.rru for c in last),
                statuses,
                latencies,
                own,
                [d for c in last for d in c.detail],
                [c.moto_capacity for c in last],
            )
        )
    report(results)
    decision_cost()
    return 0


def _velocity(rule_id: str, per: str, measure: str, unit: str, threshold: int, **extra) -> dict:
    return {
        "rule_id": rule_id,
        "condition": {"type": "velocity", "per": per, "measure": measure, "window": {"unit": unit},
                      "threshold": threshold, **extra},
        "action": "DENY",
        "reason": rule_id,
    }  # fmt: skip


# Thresholds no bench run reaches: every guard passes, so each run is the hot path (one commit).
RULES_3 = [
    {"rule_id": "blocked-device", "condition": {"type": "list", "list": "block-device"}, "action": "DENY",
     "reason": "blocked"},
    _velocity("store-rate", "store", "count", "minute", 10**9),
    _velocity("merchant-amount", "merchant", "amount", "day", 10**12, currency="CNY"),
]  # fmt: skip
RULES_6 = RULES_3 + [
    {"rule_id": "blocked-ip", "condition": {"type": "list", "list": "block-ip"}, "action": "DENY",
     "reason": "blocked"},
    _velocity("device-rate", "device", "count", "hour", 10**9),
    _velocity("caller-rate", "caller_ip", "count", "minute", 10**9),
]  # fmt: skip


def decision_cost() -> None:
    """The decision's in-process cost: building the plan (the guards) for one redemption."""
    from coupons.domain.risk.plan import Context, plan
    from coupons.domain.risk.rules import Event, RuleSet

    ctx = Context(Event.REDEMPTION, 1_800_000_000, "u-1", "cmp-1", "CODE", 1000, "CNY", "m-001", "s-1",
                  "d-1", "198.51.100.7", "203.0.113.7")  # fmt: skip
    print()
    print("  risk decision, in process (plan of the guards; resolving a cancellation is off the hot path):")
    for rules in ([], RULES_3, RULES_6):
        rule_set = RuleSet.model_validate({"version": 1, "rules": rules})
        n = 2000
        started = time.perf_counter()
        for _ in range(n):
            made = plan(rule_set, ctx)
        micros = (time.perf_counter() - started) / n * 1e6
        print(f"    {len(rules)} rules: {made.items} guard items, {micros:.1f} µs per redemption")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def cost_per_million(requests: int, wru: float, rru: float, duration_ms: float) -> dict[str, float]:
    billed_ms = math.ceil(duration_ms)
    return {
        "api": APIGW_REST_PER_M_REQUESTS,
        "lambda": LAMBDA_PER_M_REQUESTS
        + 1_000_000 * billed_ms / 1000 * LAMBDA_MEMORY_GB * LAMBDA_ARM64_PER_GB_SECOND,
        "ddb": wru * DDB_ON_DEMAND_PER_M_WRU + rru * DDB_ON_DEMAND_PER_M_RRU,
    }


def report(results: list[Result]) -> None:
    print(f"DynamoDB per operation (warm container; latency over {RUNS} in-process runs against moto)")
    print("  latency: the handler call, ms; 'own' = the same without the time moto spent serving it")
    print(
        f"  {'operation':42} {'requests':>8} {'WRU':>4} {'RRU':>4} {'p50':>6} {'p99':>6} {'own p50':>7} "
        f"{'own p99':>7}  statuses"
    )
    for r in results:
        shapes = r.requests.most_common()
        n = len(shapes[0][0])
        statuses = ", ".join(f"{s}×{c}" for s, c in sorted(r.statuses.items()))
        print(
            f"  {r.name:42} {n:>8} {r.wru:>4g} {r.rru:>4g} {statistics.median(r.latencies_ms):>6.1f} "
            f"{percentile(r.latencies_ms, 99):>6.1f} {statistics.median(r.function_ms):>7.1f} "
            f"{percentile(r.function_ms, 99):>7.1f}  {statuses}"
        )
    print()
    print("  requests and measured item sizes (last metered run):")
    for r in results:
        shapes = r.requests.most_common()
        print(f"    {r.name}: {' + '.join(shapes[0][0]) or 'none'}")
        for shape, count in shapes[1:]:
            print(
                f"      in {count} of {RUNS} runs: {' + '.join(shape)} (the API key cache, 60 s, read again)"
            )
        for line in r.detail:
            print(f"      {line}")
    reported = {str(c) for r in results for c in r.moto_capacity}
    print(
        "  moto's own ConsumedCapacity answers (ReturnConsumedCapacity=TOTAL; [] for transactions, constants"
        f" for reads), not used: {sorted(reported)}"
    )
    print()
    print(
        f"Cost per 1M operations, {PRICES_REGION} list prices of {PRICES_DATE} (Lambda duration = p50 rounded up)"
    )
    print(f"  {'operation':42} {'API GW':>8} {'Lambda':>8} {'DynamoDB':>9} {'total':>9}")
    for r in results:
        p50 = statistics.median(r.latencies_ms)
        c = cost_per_million(len(r.requests.most_common(1)[0][0]), r.wru, r.rru, p50)
        print(
            f"  {r.name:42} {c['api']:>8.2f} {c['lambda']:>8.2f} {c['ddb']:>9.2f} {sum(c.values()):>9.2f}"
            f"   (billed {math.ceil(p50)} ms)"
        )
    main_row = results[0]
    p50 = statistics.median(main_row.latencies_ms)
    c = cost_per_million(1, main_row.wru, main_row.rru, p50)
    print()
    print(
        f"1M redemptions (FIXED/PERCENT/THRESHOLD, warm, with Idempotency-Key): ${sum(c.values()):.2f} "
        f"= API Gateway ${c['api']:.2f} + Lambda ${c['lambda']:.2f} ({math.ceil(p50)} ms × 512 MB arm64) "
        f"+ DynamoDB ${c['ddb']:.2f} ({main_row.wru:g} WRU each)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
