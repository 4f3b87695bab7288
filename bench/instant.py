"""Instant settlement (即时到账): latency from a redemption committed to its payout instructed (p50, p99) on
the local stack, DynamoDB requests and write units per instant payout, the modelled per-tenant ceiling on
AWS and the cost per million instant payouts.

Part 1, cost per payout (in-process, moto `mock_aws`): BENCH_PARTIES merchants (default 20: moto copies the table on every transaction, so more grows quadratically), each with
BENCH_POSTINGS redemption journals (default 5: brand −x, merchant +x, posted by LedgerStore.post as
clearing posts them; not counted), delivered as ONE stream batch to coupons.services.instant (the payout
function's service, as functions/instant builds it) against a simulated bank table. Counted: every
DynamoDB request the service's client makes (a botocore hook), main table and bank table apart; write
units modelled (COST_MODEL) from the items each write touches, read before and after through another
client. Then the same batch again (a redelivery): what a no-op costs.

Part 1b, the threshold flush (in-process): what clearing's transaction writes more per posting on a
tenant with a `flush_threshold`, and per flush payout (one per party, its last posting crossing) the
requests and write units, then a redelivered crossing.

Part 2, latency (the local stack, `python -m infra.local --tenant demo`, as bench/settlement.py starts
it): one merchant set INSTANT over HTTP, BENCH_ORDERS redemptions (default 40) over HTTP one after the
other; latency = the bank's `accepted_at` of the payout that took the redemption's posting − the moment
the API's 201 arrived (the redemption was committed before it: an upper bound on commit → paid's start,
so a slight under-estimate of the latency; the bank records after it instructs, so it includes the send).
The deployed batching window is 60 s; the local poller's is capped at BENCH_WINDOW_S (default 5) by
LOCAL_STREAM_BATCHING_WINDOW_S, and the figures are printed with that window; on AWS add (60 −
BENCH_WINDOW_S) s to the worst case (a posting waits at most the window).

  BENCH_PARTIES=20 BENCH_POSTINGS=5 BENCH_ORDERS=40 BENCH_WINDOW_S=5 python bench/instant.py
  BENCH_SKIP_STACK=1 python bench/instant.py          (part 1 only; BENCH_SKIP_COST=1: part 2 only)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "layers" / "core" / "python")):
    if path not in sys.path:
        sys.path.insert(0, path)

from bench.clearing import item_size, units  # noqa: E402  (one sizing model for every bench)

PARTIES = int(os.environ.get("BENCH_PARTIES", "20"))
POSTINGS = int(os.environ.get("BENCH_POSTINGS", "5"))
ORDERS = int(os.environ.get("BENCH_ORDERS", "40"))
WINDOW_S = int(os.environ.get("BENCH_WINDOW_S", "5"))
MAIN_TABLE, BANK_TABLE = "coupons-bench-main", "coupons-bench-bank"

# Prices (us-east-1, on demand, list): DynamoDB $1.25 per million write request units, $0.25 per million
# read request units; Lambda $0.20 per million requests + $0.0000166667 per GB-s; EventBridge custom
# events $1.00 per million.
WRU_PRICE, RRU_PRICE = 1.25e-6, 0.25e-6
LAMBDA_REQUEST, LAMBDA_GB_S = 0.20e-6, 0.0000166667
EVENT_PRICE = 1.0e-6
PARTITION_WCU_PER_S = 1000
REQUEST_MS = 8  # an assumed DynamoDB request latency in the function (single-digit ms; transactions more)
RESERVED_CONCURRENCY = 10  # the demo tenant's settlement_reserved_concurrency, the payout function's too

COST_MODEL = """\
Cost model. DynamoDB capacity is computed, not read from moto: a write in TransactWriteItems costs 2 write
units per item per 1 KB (rounded up) of the larger of the item before and after, a plain PutItem /
UpdateItem / DeleteItem 1 unit per KB; a write whose condition fails is counted as if it had written (an
upper bound). Index writes (projection ALL): an item entering, leaving or changing in gsi1 writes it once,
1 unit per KB (a claim takes the posting out of UNSETTLED#{shard}; each write of the payout's run item
rewrites its SETTLEMENTRUNS entry). Reads: a strongly consistent read is 1 read unit per 4 KB returned,
a BatchGetItem per item. The simulated bank's table is counted apart (a real channel replaces its calls).
Per payout the Lambda share is one invocation per batch / payouts in the batch, and a duration modelled
as the payout's requests one after the other at REQUEST_MS each (8 ms, assumed), 512 MB. Prices: us-east-1 list,
on demand: $1.25 / million write units, $0.25 / million read units, Lambda $0.20 / million requests +
$0.0000166667 / GB-s, EventBridge $1.00 / million events (one InstantPayoutSent per payout)."""


class Meter:
    """The service client's DynamoDB requests per table; the write units of each write it makes."""

    def __init__(self, client, raw):
        self.raw = raw
        self.requests: Counter = Counter()
        self.wcu = self.wcu_gsi = self.rcu = 0.0
        self._pending: list = []
        events = client.meta.events
        events.register("provide-client-params.dynamodb", self._params)
        events.register("before-call.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    def reset(self) -> None:
        self.requests = Counter()
        self.wcu = self.wcu_gsi = self.rcu = 0.0

    def _params(self, params, **_):
        self._last = params

    def _get(self, table: str, key: dict) -> dict | None:
        return self.raw.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def _before(self, model, **_):
        params = self._last
        table = params.get("TableName") or ""
        if model.name == "TransactWriteItems":
            table = next(iter(params["TransactItems"][0].values()))["TableName"]
        elif model.name == "BatchGetItem":
            table = next(iter(params["RequestItems"]))
        self.requests[(table, model.name)] += 1
        self._pending = []
        if model.name == "TransactWriteItems":
            for action in params["TransactItems"]:
                kind, op = next(iter(action.items()))
                key = op.get("Key") or {"pk": op["Item"]["pk"], "sk": op["Item"]["sk"]}
                self._pending.append((2, op["TableName"], key, self._get(op["TableName"], key), op.get("Item")))
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            key = params.get("Key") or {"pk": params["Item"]["pk"], "sk": params["Item"]["sk"]}
            self._pending.append((1, table, key, self._get(table, key), params.get("Item")))

    def _after(self, model, parsed, **_):
        for per_kb, table, key, before, proposed in self._pending:
            after = self._get(table, key)
            if table != MAIN_TABLE:
                continue  # the bank's table: counted as requests only
            self.wcu += units(max(item_size(before), item_size(after), item_size(proposed)), 1024) * per_kb
            old = (before or {}).get("gsi1pk"), (before or {}).get("gsi1sk")
            new = (after or {}).get("gsi1pk"), (after or {}).get("gsi1sk")
            if old[0] and new[0]:
                self.wcu_gsi += units(item_size(after), 1024) * (1 if old == new else 2)
            elif old[0] or new[0]:
                self.wcu_gsi += units(item_size(before if old[0] else after), 1024)
        self._pending = []
        if model.name == "GetItem":
            self.rcu += units(item_size(parsed.get("Item")), 4096)
        elif model.name == "Query":
            self.rcu += units(sum(item_size(i) for i in parsed.get("Items", [])), 4096)
        elif model.name == "BatchGetItem":
            self.rcu += sum(units(item_size(i), 4096) for items in parsed.get("Responses", {}).values() for i in items)


def cost_per_payout() -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from coupons.data.instant import InstantStore
    from coupons.data.ledger import LedgerStore
    from coupons.data.schema import BANK, MAIN
    from coupons.domain.instant import InstantTerms, SettlementMode
    from coupons.domain.ledger import Journal, Leg
    from coupons.services.instant import InstantPayouts
    from tests.dynamo_json import from_item

    with mock_aws():
        raw = boto3.client("dynamodb", region_name="eu-west-1")
        raw.create_table(**MAIN.create_table_kwargs(MAIN_TABLE))
        raw.create_table(**BANK.create_table_kwargs(BANK_TABLE))
        ledger = LedgerStore(raw, MAIN_TABLE)
        today = datetime.now(UTC).date().isoformat()
        for p in range(PARTIES):
            for n in range(POSTINGS):
                journal_id = f"jnl_rdm_{p:04d}_{n:03d}"
                ledger.post(
                    Journal(journal_id=journal_id, source_id=journal_id[4:], kind="REDEMPTION", currency="CNY",
                            legs=(Leg("brand:b1", -(100 + n)), Leg(f"merchant:m{p:04d}", 100 + n)),
                            party_shares={}),
                    business_date=today, due_date=today, posted_at=f"{today}T01:00:00Z",
                    extra={"redemption_id": journal_id[4:], "merchant_id": f"m{p:04d}"},
                )  # fmt: skip
        postings = [
            from_item(i)
            for i in raw.scan(TableName=MAIN_TABLE)["Items"]
            if i["pk"]["S"].startswith("ENTRIES#merchant:")
        ]
        client, meter, settlement, bank, steps = _payout_side(raw)
        events: list = []
        service = InstantPayouts(
            InstantStore(client, MAIN_TABLE), settlement, steps, lambda: bank,
            InstantTerms(default_mode=SettlementMode.INSTANT), time_zone="Asia/Shanghai",
            emit=lambda kind, detail: events.append(kind),
        )  # fmt: skip
        outcome = service.process(postings, delivered_at=datetime.now(UTC))
        assert len(outcome.paid) == PARTIES and not outcome.failed, outcome
        assert sum(r.amount for r in bank.accepted()) == sum(p["amount"] for p in postings)
        first = (Counter(meter.requests), meter.wcu, meter.wcu_gsi, meter.rcu)
        meter.reset()
        again = service.process(postings, delivered_at=datetime.now(UTC))
        assert again.paid == [] and len(bank.accepted()) == PARTIES
        redelivery = (Counter(meter.requests), meter.wcu, meter.wcu_gsi)
    return {"first": first, "redelivery": redelivery, "events": len(events)}



def _payout_side(raw):
    """The payout function's side, metered on a client of its own: (client, meter, settlement store,
    simulated bank, settlement steps)."""
    import boto3

    from coupons.channels.simulated import SimulatedBank
    from coupons.data.redemptions import RedemptionStore
    from coupons.data.settlement import SettlementStore
    from coupons.services.instant import SEND_LEASE_S
    from coupons.services.settlement import SettlementSteps

    client = boto3.client("dynamodb", region_name="eu-west-1")
    meter = Meter(client, raw)
    settlement = SettlementStore(client, MAIN_TABLE)
    bank = SimulatedBank(client, BANK_TABLE)
    steps = SettlementSteps(settlement, RedemptionStore(client, MAIN_TABLE), None, lambda: bank,
                            time_zone="Asia/Shanghai", minimums={}, send_lease_s=SEND_LEASE_S)  # fmt: skip
    return client, meter, settlement, bank, steps

def flush_cost() -> dict[str, Any]:
    """The threshold flush: what clearing pays more per posting on a tenant with a threshold (the
    pending total's ADD and the posting's mark in the journal's transaction), and per flush payout the
    requests and write units (the crossing's marks read, the postings read whole, claimed, paid)."""
    import boto3
    from moto import mock_aws

    from coupons.data.instant import InstantStore
    from coupons.data.instant_pending import InstantPending
    from coupons.data.ledger import LedgerStore
    from coupons.data.schema import BANK, MAIN
    from coupons.domain import instant as rules
    from coupons.domain.instant import InstantTerms, SettlementMode
    from coupons.domain.ledger import Journal, Leg
    from coupons.services.instant import InstantPayouts
    from coupons.services.instant_pending import PendingCounter

    at = datetime.now(UTC)
    with mock_aws():
        raw = boto3.client("dynamodb", region_name="eu-west-1")
        raw.create_table(**MAIN.create_table_kwargs(MAIN_TABLE))
        raw.create_table(**BANK.create_table_kwargs(BANK_TABLE))
        clearing_client = boto3.client("dynamodb", region_name="eu-west-1")
        clearing_meter = Meter(clearing_client, raw)
        ledger = LedgerStore(clearing_client, MAIN_TABLE)
        today = at.date().isoformat()
        # Each party's postings sum to exactly its threshold: the last one crosses it.
        threshold = sum(100 + n for n in range(POSTINGS))
        terms = InstantTerms(default_mode=SettlementMode.INSTANT, thresholds={"CNY": threshold})
        counter = PendingCounter(InstantPending(clearing_client, MAIN_TABLE), terms)
        plain_wcu = counted_wcu = 0.0
        for counted in (False, True):
            clearing_meter.reset()
            for p in range(PARTIES):
                for n in range(POSTINGS):
                    journal_id = f"jnl_rdm_{int(counted)}_{p:04d}_{n:03d}"
                    journal = Journal(
                        journal_id=journal_id, source_id=journal_id[4:], kind="REDEMPTION", currency="CNY",
                        legs=(Leg("brand:b1", -(100 + n)), Leg(f"merchant:f{int(counted)}{p:04d}", 100 + n)),
                        party_shares={},
                    )  # fmt: skip
                    extra = {"redemption_id": journal_id[4:], "merchant_id": f"f{int(counted)}{p:04d}"}
                    also = counter.writes(journal, business_date=today, extra=extra, at=at) if counted else []
                    ledger.post(journal, business_date=today, due_date=today, posted_at=f"{today}T01:00:00Z",
                                extra=extra, also=also)  # fmt: skip
            wcu = clearing_meter.wcu + clearing_meter.wcu_gsi
            counted_wcu, plain_wcu = (wcu, plain_wcu) if counted else (counted_wcu, wcu)
        client, meter, settlement, bank, steps = _payout_side(raw)
        pending = InstantPending(client, MAIN_TABLE)
        service = InstantPayouts(
            InstantStore(client, MAIN_TABLE), settlement, steps, lambda: bank, terms,
            time_zone="Asia/Shanghai", pending=pending,
        )  # fmt: skip
        window = rules.window_start(at, terms.window_seconds)
        crossings = [pending.total(f"merchant:f1{p:04d}", "CNY", window) for p in range(PARTIES)]
        assert all(c and c["remaining"] == 0 for c in crossings), crossings[:1]
        meter.reset()
        paid = [service.flush(c).paid for c in crossings]
        assert all(len(x) == 1 for x in paid) and len(bank.accepted()) == PARTIES
        first = (Counter(meter.requests), meter.wcu, meter.wcu_gsi, meter.rcu)
        meter.reset()
        assert all(service.flush(c).paid == [] for c in crossings)
        again = (Counter(meter.requests), meter.wcu + meter.wcu_gsi)
    postings = PARTIES * POSTINGS
    return {"clearing_extra_wcu": (counted_wcu - plain_wcu) / postings, "first": first, "again": again}


def latency() -> dict[str, Any]:
    from bench.settlement import LocalStack
    from coupons.channels.simulated import SimulatedBank
    from tests.e2e.support import Api, redeem, wait_for_clearing

    saved = os.environ.get("LOCAL_STREAM_BATCHING_WINDOW_S")
    os.environ["LOCAL_STREAM_BATCHING_WINDOW_S"] = str(WINDOW_S)
    state = Path(tempfile.mkdtemp(prefix="bench-instant-"))
    stack = LocalStack(state)
    try:
        stack.start()
        endpoints = stack.endpoints
        api, admin = Api(endpoints["base_url"]), endpoints["keys"]["admin"]
        merchant = f"m-bench-{uuid.uuid4().hex[:6]}"
        key = api.ok("POST", "/v1/api-keys", admin, {"principal": f"merchant:{merchant}"})["api_key"]
        api.ok("PUT", f"/v1/merchants/{merchant}/settlement", admin, {"mode": "INSTANT"})
        campaign = api.ok("POST", "/v1/campaigns", admin, {
            "name": "bench instant", "type": "FIXED", "amount": 100, "brand_id": "brand-bench", "currency": "CNY",
            "valid_days": 30, "total_quantity": ORDERS, "settlement_cycle": "T+1",
        })["campaign_id"]  # fmt: skip
        api.ok("POST", f"/v1/campaigns/{campaign}/activate", admin)
        codes = [api.ok("POST", f"/v1/campaigns/{campaign}/coupons", admin, {"user_id": f"u-{i}"})["code"]
                 for i in range(ORDERS)]  # fmt: skip
        committed: dict[str, float] = {}
        for code in codes:
            answer = redeem(api, key, merchant, code, 2000)
            committed[answer["redemption_id"]] = time.time()
        wait_for_clearing(api, admin, answer["redemption_id"])
        ddb = stack.client("dynamodb")
        bank = SimulatedBank(ddb, endpoints["tables"]["simulatedBank"])
        deadline = time.monotonic() + 120 + WINDOW_S
        while True:
            records = [r for r in bank.records() if r["party"] == f"merchant:{merchant}"]
            if sum(r["amount"] for r in records) >= 100 * ORDERS:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"instant payouts incomplete: {len(records)} payouts")
            time.sleep(0.5)
        accepted = {r["run_id"]: datetime.fromisoformat(r["accepted_at"].replace("Z", "+00:00")).timestamp()
                    for r in records}  # fmt: skip
        from tests.dynamo_json import from_item

        latencies = []
        items = []
        kwargs = {"TableName": endpoints["tables"]["main"], "ConsistentRead": True}
        while True:
            page = ddb.scan(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for item in items:
            if item["pk"]["S"].startswith(f"ENTRIES#merchant:{merchant}#") and item["source_kind"]["S"] == "REDEMPTION":
                posting = from_item(item)
                latencies.append(accepted[posting["run_id"]] - committed[posting["redemption_id"]])
        return {"latencies": sorted(latencies), "payouts": len(records)}
    finally:
        stack.stop()
        if saved is None:
            os.environ.pop("LOCAL_STREAM_BATCHING_WINDOW_S", None)
        else:
            os.environ["LOCAL_STREAM_BATCHING_WINDOW_S"] = saved


def percentile(values: list[float], p: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def main() -> int:
    print(COST_MODEL, flush=True)
    print()
    if os.environ.get("BENCH_SKIP_COST"):
        return print_latency()
    cost = cost_per_payout()
    requests, wcu, wcu_gsi, rcu = cost["first"]
    main_requests = {op: n for (table, op), n in requests.items() if table == MAIN_TABLE}
    bank_requests = sum(n for (table, _), n in requests.items() if table == BANK_TABLE)
    per = PARTIES
    total_main = sum(main_requests.values())
    print(f"cost per instant payout: {PARTIES} parties x {POSTINGS} postings, one batch")
    print(f"  DynamoDB requests per payout (main table): {total_main / per:.2f}  "
          + ", ".join(f"{op} {n / per:.2f}" for op, n in sorted(main_requests.items())))  # fmt: skip
    print(f"  + simulated bank requests per payout: {bank_requests / per:.2f}")
    print(f"  write units per payout: {(wcu + wcu_gsi) / per:.1f} = table {wcu / per:.1f} + gsi1 {wcu_gsi / per:.1f}"
          f"  (per posting: {(wcu + wcu_gsi) / (per * POSTINGS):.1f})")  # fmt: skip
    print(f"  read units per payout: {rcu / per:.1f}")
    r_requests, r_wcu, r_gsi = cost["redelivery"]
    print(f"  a redelivered batch (nothing to do): {sum(r_requests.values()) / per:.2f} requests, "
          f"{(r_wcu + r_gsi) / per:.1f} write units per party")  # fmt: skip
    # The function's time per payout on AWS, modelled: its requests one after the other (the in-process
    # time is moto's and the meter's, not comparable).
    ms_per_payout = (total_main + bank_requests) / per * REQUEST_MS
    # Cost per million payouts.
    write_cost = (wcu + wcu_gsi) / per * WRU_PRICE
    read_cost = rcu / per * RRU_PRICE
    lambda_cost = LAMBDA_REQUEST / per + (ms_per_payout / 1000) * 0.5 * LAMBDA_GB_S
    per_million = (write_cost + read_cost + lambda_cost + EVENT_PRICE) * 1e6
    print(f"  cost per million instant payouts: ${per_million:,.2f} = DynamoDB writes ${write_cost * 1e6:,.2f} + "
          f"reads ${read_cost * 1e6:,.2f} + Lambda ${lambda_cost * 1e6:,.2f} + events ${EVENT_PRICE * 1e6:,.2f}"
          " (the channel's own fee not included)")  # fmt: skip
    # The ceiling. (1) DynamoDB: the hottest item a payout writes is a balance shard of
    # settlement:{channel} (every payout's journal ADDs to one of its 32 shards, transactional: 2 WCU),
    # so 32 x 1,000 / 2 payouts/s. (2) Lambda: one batch per stream shard at a time, parties one after the
    # other, each payout ~N requests in sequence at REQUEST_MS each on DynamoDB, within the function's
    # reserved concurrency (demo: settlement_reserved_concurrency = 10).
    dynamodb_ceiling = 32 * PARTITION_WCU_PER_S / 2
    per_payout_s = (total_main + bank_requests) / per * REQUEST_MS / 1000
    lambda_ceiling = RESERVED_CONCURRENCY / per_payout_s
    print(f"  modelled per-tenant ceiling on AWS: ~{min(dynamodb_ceiling, lambda_ceiling):,.0f} instant payouts/s, "
          f"bound by {'Lambda' if lambda_ceiling < dynamodb_ceiling else 'DynamoDB'}: Lambda {RESERVED_CONCURRENCY} "
          f"concurrent batches x 1 / ({(total_main + bank_requests) / per:.1f} requests x {REQUEST_MS} ms) = "
          f"{lambda_ceiling:,.0f}/s; DynamoDB the settlement:{{channel}} balance shards 32 x 1,000 WCU/s / 2 = "
          f"{dynamodb_ceiling:,.0f}/s. Per party: one payout per window (60 s) per stream shard carrying it.")  # fmt: skip
    print()
    flush = flush_cost()
    requests, wcu, wcu_gsi, rcu = flush["first"]
    main_requests = {op: n for (table, op), n in requests.items() if table == MAIN_TABLE}
    print(f"the threshold flush: {PARTIES} parties x {POSTINGS} postings, each party's last posting crossing")
    print(f"  clearing, per merchant redemption posting on a tenant with a threshold: "
          f"+{flush['clearing_extra_wcu']:.1f} write units (the window's total ADD + the posting's mark, "
          "in the journal's transaction: 2 per item)")  # fmt: skip
    print(f"  DynamoDB requests per flush payout (main table): {sum(main_requests.values()) / per:.2f}  "
          + ", ".join(f"{op} {n / per:.2f}" for op, n in sorted(main_requests.items())))  # fmt: skip
    print(f"  write units per flush payout: {(wcu + wcu_gsi) / per:.1f} = table {wcu / per:.1f} + gsi1 "
          f"{wcu_gsi / per:.1f}; read units {rcu / per:.1f}")  # fmt: skip
    again_requests, again_wcu = flush["again"]
    print(f"  a redelivered crossing: {sum(again_requests.values()) / per:.2f} requests, "
          f"{again_wcu / per:.1f} write units per party")  # fmt: skip
    print()
    if os.environ.get("BENCH_SKIP_STACK"):
        print("latency: skipped (BENCH_SKIP_STACK)")
        return 0
    return print_latency()


def print_latency() -> int:
    found = latency()
    values = found["latencies"]
    print(f"latency, redemption committed -> payout instructed at the bank (local stack, window {WINDOW_S} s,"
          f" {ORDERS} orders, {found['payouts']} payouts):")  # fmt: skip
    print(f"  p50 {percentile(values, 50):.2f} s, p99 {percentile(values, 99):.2f} s, max {max(values):.2f} s")
    print(f"  on AWS with the deployed 60 s window: at most ~{max(values) - WINDOW_S + 60:.0f} s (p99 bound)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
