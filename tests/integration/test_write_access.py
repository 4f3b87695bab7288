"""Least privilege by item, proved on the code: the real flows (the API function in-process, the clearing
function on the stream records they made, every settlement step) run on moto, which evaluates no IAM,
while every DynamoDB request is recorded with the function making it; each written key must lie in its
writer's partitions (coupons.data.access, which the roles' LeadingKeys conditions are built from), and
each operation must be one the writer's role allows."""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import botocore.client
import pytest

from coupons.channels.simulated import SimulatedBank
from coupons.data import access
from coupons.data.channel_statements import ChannelStatementStore
from coupons.data.ledger import SHARDS, LedgerStore
from coupons.data.reconciliation import ReconciliationStore
from coupons.data.redemptions import RedemptionStore
from coupons.data.schema import BANK
from coupons.data.settlement import SettlementStore
from coupons.data.statements import StatementStore
from coupons.domain import settlement as rules
from coupons.services.channel_statements import publish_statement
from coupons.services.reconciliation import Reconciliation
from coupons.services.settlement import SettlementSteps
from tests.dynamo_json import from_item
from tests.integration.conftest import TABLE, FakeContext, load_clearing_handler
from tests.integration.test_funding_rules_api import approve, campaign_with, create
from tests.integration.test_issuance_api import active_campaign, issue
from tests.integration.test_redemption_api import redeem
from tests.integration.test_settlement_runs_api import BUCKET, PAST, settlement, start  # noqa: F401 - fixture

BANK_TABLE = "coupons-test-bank"
# Each TransactWriteItems action is authorised as its own item action (and key).
_TRANSACT = {
    "Put": access.PUT,
    "Update": access.UPDATE,
    "Delete": access.DELETE,
    "ConditionCheck": access.CHECK,
}
_WRITES = {"PutItem": access.PUT, "UpdateItem": access.UPDATE, "DeleteItem": access.DELETE}


@dataclass
class Recorder:
    """Every DynamoDB request made while a writer is named, as (table, IAM action, partition key)."""

    writer: str | None = None
    requests: dict[str, list[tuple[str, str, str | None]]] = field(default_factory=lambda: defaultdict(list))

    @contextlib.contextmanager
    def as_(self, writer: str) -> Iterator[None]:
        before, self.writer = self.writer, writer
        try:
            yield
        finally:
            self.writer = before

    def record(self, operation: str, params: dict) -> None:
        if self.writer is None:
            return  # the test's own setup and checks
        log = self.requests[self.writer]
        if operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                ((kind, request),) = action.items()
                key = request.get("Key") or request["Item"]
                log.append((request["TableName"], _TRANSACT[kind], key["pk"]["S"]))
        elif operation in _WRITES:
            key = params.get("Key") or params["Item"]
            log.append((params["TableName"], _WRITES[operation], key["pk"]["S"]))
        elif operation == "TransactGetItems":
            # Authorised per contained Get, as dynamodb:GetItem on its item (there is no action of its own).
            for action in params["TransactItems"]:
                log.append((action["Get"]["TableName"], access.GET, None))  # reads are table-wide
        elif operation == "BatchGetItem":
            log += [(table, f"dynamodb:{operation}", None) for table in params["RequestItems"]]
        else:
            log.append((params.get("TableName", ""), f"dynamodb:{operation}", None))


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    """Wraps every botocore client's calls (clients made before the fixture included)."""
    recorded = Recorder()
    original = botocore.client.BaseClient._make_api_call

    def call(client, operation, params):
        if client.meta.service_model.service_name == "dynamodb":
            recorded.record(operation, params)
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)
    return recorded


def stream_event(items: list[dict]) -> dict:
    """The INSERT records of these items as the table's stream delivers them to clearing."""
    return {
        "Records": [
            {
                "eventID": f"evt-{n}",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "eu-west-1",
                "eventSourceARN": f"arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}/stream/x",
                "dynamodb": {
                    "Keys": {"pk": item["pk"], "sk": item["sk"]},
                    "NewImage": item,
                    "SequenceNumber": str(1000 + n),
                    "SizeBytes": 100,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
            for n, item in enumerate(items)
        ]
    }


def api_flows(api, keys, settlement) -> None:  # noqa: F811
    """Everything the API writes: keys, rules, campaigns, coupons, redemptions of every verification,
    reversals, voids, a run started and asked for again."""
    admin, issuer, merchant = keys["admin"], keys["issuer:brand-a"], keys["merchant:m-001"]
    key_id = api.call("POST", "/v1/api-keys", api_key=admin, body={"principal": "merchant:m-009"}).json[
        "key_id"
    ]
    assert api.call("DELETE", f"/v1/api-keys/{key_id}", api_key=admin).status in (200, 204)
    rule = create(api, admin, brand_ids=["brand-a"]).json["rule_id"]
    approve(api, admin, rule)
    funded = campaign_with(api, issuer, rule).json["campaign_id"]
    assert api.call("POST", f"/v1/campaigns/{funded}/activate", api_key=issuer).status == 200
    # A campaign's settlement mode (instant settlement, docs/instant.md)
    path = f"/v1/campaigns/{funded}/settlement"
    assert api.call("PUT", path, api_key=admin, body={"mode": "SCHEDULED"}).status == 200
    plain = active_campaign(api, keys, per_user_limit=10)
    qr = active_campaign(api, keys, per_user_limit=10, verification_methods=["QR_TOKEN"])
    for n, campaign_id in enumerate((funded, plain, plain)):
        issued = issue(api, admin, campaign_id, headers={"Idempotency-Key": f"issue-{n}"})
        assert issued.status == 201, issued.raw
        code = issued.json["code"]
        answer = redeem(api, merchant, code, headers={"Idempotency-Key": f"redeem-{n}"})
        assert answer.status == 201, answer.raw
        path = f"/v1/redemptions/{answer.json['redemption_id']}/reversals"
        assert api.call("POST", path, api_key=merchant, body={"amount": 100}).status == 201
    code = issue(api, admin, qr).json["code"]
    token = api.call("POST", f"/v1/coupons/{code}/qr-token", api_key=admin).json["qr_token"]
    assert redeem(api, merchant, qr_token=token).status == 201
    # Redemption holds (issue #15): one captured, one voided, one left for the expiry sweep (below).
    for n, end in enumerate(("capture", "void", None)):
        code = issue(api, admin, plain, user=f"u-hold-{n}").json["code"]
        held = redeem(api, merchant, code, capture=False, headers={"Idempotency-Key": f"hold-{n}"})
        assert held.status == 201, held.raw
        if end is not None:
            path = f"/v1/redemptions/{held.json['redemption_id']}/{end}"
            assert (
                api.call("POST", path, api_key=merchant, headers={"Idempotency-Key": f"{end}-{n}"}).status
                == 200
            )
    unused = issue(api, admin, plain, user="u-2").json["code"]
    assert api.call("POST", f"/v1/coupons/{unused}/void", api_key=admin).status == 200
    assert api.call("POST", f"/v1/campaigns/{plain}/pause", api_key=admin).status == 200
    assert api.call("GET", f"/v1/campaigns/{plain}", api_key=admin).status == 200
    assert start(api, admin, headers={"Idempotency-Key": "run-1"}).status == 202
    assert start(api, admin).status == 200


def settle(recorder: Recorder, steps: SettlementSteps, day: str, execution: str) -> None:
    """Every step of one execution, each as its own function, in the state machine's order."""
    run = rules.run_id(day)
    with recorder.as_("settlement.open"):
        assert steps.open(execution=execution, business_date=day)["proceed"] is True
    with recorder.as_("settlement.await_clearing"):
        steps.await_clearing(day)
    with recorder.as_("settlement.claim"):
        for shard in range(SHARDS):
            steps.claim(run, day, shard)
    with recorder.as_("settlement.plan"):
        plan = steps.plan(run)
    body = steps._statements._client.get_object(Bucket=plan["bucket"], Key=plan["key"])["Body"].read()
    for batch in json.loads(body):
        with recorder.as_("settlement.pay"):
            steps.pay(run, day, batch["parties"])
        with recorder.as_("settlement.write_statements"):
            steps.write_statements(run, day, batch["parties"])
        with recorder.as_("settlement.mark_settled"):
            steps.mark_settled(run, batch["parties"])
    with recorder.as_("settlement.close"):
        steps.close(run, execution)


def test_every_item_each_function_writes_lies_in_its_partitions_and_every_call_is_one_its_role_allows(
    recorder,
    api,
    keys,
    settlement,  # noqa: F811
    monkeypatch,
):
    # Given everything the API writes
    real_call = api.call
    api.call = lambda *args, **kwargs: _as(recorder, "api", real_call, *args, **kwargs)
    api_flows(api, keys, settlement)

    # When clearing posts the redemptions and reversals from their stream records (redemptions first)
    sources = [
        i
        for i in api.ddb.scan(TableName=TABLE)["Items"]
        if i.get("kind", {}).get("S") in ("REDEMPTION", "REVERSAL")
    ]
    sources.sort(key=lambda i: i["kind"]["S"] != "REDEMPTION")
    # (on a tenant with an instant flush threshold: clearing counts merchants' postings toward it)
    monkeypatch.setenv("INSTANT_SETTLEMENT", json.dumps({"flush_threshold": {"CNY": 1}}))
    clearing = load_clearing_handler()
    with recorder.as_("clearing"):
        assert clearing.lambda_handler(stream_event(sources), FakeContext())["batchItemFailures"] == []
    monkeypatch.delenv("INSTANT_SETTLEMENT")
    totals = [from_item(i) for i in api.ddb.scan(TableName=TABLE)["Items"]
              if i["pk"]["S"].startswith("IPENDING#merchant:m-001#") and i["sk"]["S"] == "TOTAL"]  # fmt: skip
    assert totals
    assert api.call("GET", "/v1/accounts/merchant:m-001/balance", api_key=keys["admin"]).status == 200

    # And the anomaly detector counts the redemptions, told to flag at once (its hold and records too)
    from coupons.data.anomaly import AnomalyStore
    from coupons.domain.risk.anomaly import DetectorConfig
    from coupons.services.anomaly import Detector

    detector = Detector(AnomalyStore(api.ddb, TABLE), DetectorConfig(warmup=0, z_threshold=-1.0))
    with recorder.as_("anomaly"):
        for source in sources:
            if source["kind"]["S"] == "REDEMPTION":
                assert detector.observe(from_item(source)) in ("counted", "flagged")

    # And two days are settled: the first carries every net (below a huge minimum), the second claims
    # the carried amounts with the rest and pays them; then a failure is recorded on the API's run
    api.ddb.create_table(**BANK.create_table_kwargs(BANK_TABLE))
    bank = SimulatedBank(api.ddb, BANK_TABLE)

    def steps(minimum: int) -> SettlementSteps:
        return SettlementSteps(
            SettlementStore(api.ddb, TABLE),
            RedemptionStore(api.ddb, TABLE),
            StatementStore(settlement.s3, BUCKET),
            lambda: bank,
            time_zone="Asia/Shanghai",
            minimums={"CNY": minimum},
        )

    # And instant payouts (issue #15 point 1): an admin sets a merchant's mode; with the tenant's default
    # INSTANT, m-001's first postings' payout fails and is given back to the runs, the rest are paid at once
    assert api.call("PUT", "/v1/merchants/m-002/settlement", api_key=keys["admin"], body={"mode": "SCHEDULED"}).status == 200
    from coupons.data.instant import InstantStore
    from coupons.domain.instant import InstantTerms
    from coupons.services.instant import InstantPayouts

    merchant_postings = sorted(
        (
            from_item(i)
            for i in api.ddb.scan(TableName=TABLE)["Items"]
            if i["pk"]["S"].startswith("ENTRIES#merchant:m-001#") and i["source_kind"]["S"] == "REDEMPTION"
        ),
        key=lambda p: p["journal_id"],
    )
    instant = InstantPayouts(
        InstantStore(api.ddb, TABLE), SettlementStore(api.ddb, TABLE), steps(0), lambda: bank,
        InstantTerms(default_mode="INSTANT", max_attempts=1), time_zone="Asia/Shanghai",
    )  # fmt: skip
    bank.inject("merchant:m-001", "fail")
    with recorder.as_("instant"):
        assert instant.process(merchant_postings[:1], delivered_at=datetime.now(ZoneInfo("UTC"))).left
        assert instant.process(merchant_postings[1:], delivered_at=datetime.now(ZoneInfo("UTC"))).paid
    # ... and a crossing's flush of m-001's window (its postings paid or given back already: it reads)
    from coupons.data.instant_pending import InstantPending

    flusher = InstantPayouts(
        InstantStore(api.ddb, TABLE), SettlementStore(api.ddb, TABLE), steps(0), lambda: bank,
        InstantTerms(default_mode="INSTANT", max_attempts=1), time_zone="Asia/Shanghai",
        pending=InstantPending(api.ddb, TABLE),
    )  # fmt: skip
    with recorder.as_("instant"):
        for total in totals:
            assert flusher.flush(total).paid == []

    later = (date.fromisoformat(PAST) + timedelta(days=10)).isoformat()
    settle(recorder, steps(10**9), later, "exec-carry")
    next_day = (date.fromisoformat(later) + timedelta(days=1)).isoformat()
    settle(recorder, steps(1), next_day, "exec-pay")
    with recorder.as_("settlement.record_failure"):
        steps(1).record_failure(rules.run_id(PAST), f"settle-test-{PAST}-1", "Boom", "a test failure")
    carried = [
        from_item(i) for i in api.ddb.scan(TableName=TABLE)["Items"] if i["pk"]["S"].startswith("CARRY#")
    ]
    assert carried and bank.accepted(), "the flows reached carries and transfers"

    # And the expiry sweep releases the hold left to expire
    from tests.integration.test_redemption_holds_api import holds_over

    with recorder.as_("holds.expiry"):
        assert holds_over(api.ddb, later=7200).release_due()["released"] == 1

    # And the audit function appends every change the flows made, from the table's stream
    from tests.integration.conftest import Stream, load_audit_handler

    audit_handler = load_audit_handler()
    with recorder.as_("audit"):
        assert audit_handler.lambda_handler(Stream(api.ddb).batch(), FakeContext())["batchItemFailures"] == []
    # And the bank's statement of today (its clock's day) is reconciled: matched, exceptions recorded and
    # compensated (the bank's file is written outside any writer: it is the channel's, not ours)
    files = ChannelStatementStore(settlement.s3, BUCKET)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    published = publish_statement(bank, files, channel_name="simulated", statement_date=today,
                                  time_zone="Asia/Shanghai", inject="unknown=1")  # fmt: skip
    reconciliation = Reconciliation(ReconciliationStore(api.ddb, TABLE), files, SettlementStore(api.ddb, TABLE),
                                    LedgerStore(api.ddb, TABLE), lambda: bank, time_zone="Asia/Shanghai")  # fmt: skip
    with recorder.as_("reconciliation"):
        run = reconciliation.start(bucket=BUCKET, key=published.key, version_id=published.version_id)
        assert reconciliation.match(run["run_id"])["exceptions"] >= 1
        reconciliation.compensate(run["run_id"], start=0, limit=50)
        reconciliation.complete(run["run_id"])
    # And a merchant's order file cancels an order: the order-file function reverses its redemptions
    import coupons.orders_wiring
    from coupons.domain.orders import OrderEvent
    from coupons.domain.principals import parse_principal

    coupons.orders_wiring.reset()
    cancelled = OrderEvent("m-001", "o-1", "CANCELLED", "2026-03-10T04:00:00.000000Z")
    with recorder.as_("orders"):
        [applied] = coupons.orders_wiring.service().report(
            [cancelled], parse_principal("merchant:m-001"), source="order-files/m-001/2026-03-10.csv"
        )
    assert any("reversal_id" in done for done in applied["effects"].values()), applied

    # Then each function wrote only inside its partitions, and called only what its role allows
    outside, refused = [], []
    for writer, requests in recorder.requests.items():
        granted = access.WRITERS[writer]
        for table, action, pk in requests:
            if table == BANK_TABLE:
                assert writer in ("settlement.pay", "instant"), (writer, action, pk)  # the channel's own table
                continue
            if pk is not None and not access.allows(writer, pk):
                outside.append((writer, action, pk))
            if action not in (*granted.reads, *granted.writes):
                refused.append((writer, action))
    assert sorted(set(outside)) == [], sorted(set(outside))
    assert sorted(set(refused)) == [], sorted(set(refused))
    # And every writer of the mapping was exercised (those that write, writing)
    for writer, granted in access.WRITERS.items():
        if writer == "settlement.heartbeat":
            continue  # reads one run; its handler is tested on its own
        writes = [r for r in recorder.requests[writer] if r[2] is not None and r[0] == TABLE]
        assert bool(writes) == bool(granted.writes), writer


def _as(recorder: Recorder, writer: str, call, *args, **kwargs):
    with recorder.as_(writer):
        return call(*args, **kwargs)
