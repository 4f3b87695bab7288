"""A merchant's daily order file in S3 (order-files/{merchant}/{date}.csv) through the order-file function
on moto: the same outcomes as the API, applied once; a bad line refuses the file; redemptions without
an outcome after the grace period become ORDER_OUTCOME_MISSING."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime

import boto3
import pytest

from coupons.data.reconciliation import ReconciliationStore
from coupons.domain.orders_file import OrderFileError
from tests.integration.conftest import ROOT, TABLE
from tests.integration.test_orders_api import AT, redeemed, reversals

BUCKET = "coupons-test-orders"
HEADER = "order_id,type,amount,currency,occurred_at,event_id\n"


@pytest.fixture
def order_files(api):
    import coupons.orders_wiring

    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    coupons.orders_wiring.reset()
    spec = importlib.util.spec_from_file_location(
        "orders_file_handler", ROOT / "functions" / "orders" / "file" / "handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def deliver(text: str, key: str = "order-files/m-001/2026-03-10.csv"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode())
        event = {"detail": {"bucket": {"name": BUCKET}, "object": {"key": key}}}
        return module.lambda_handler(event, _Context())

    yield deliver
    coupons.orders_wiring.reset()


class _Context:
    function_name, memory_limit_in_mb, invoked_function_arn, aws_request_id = (
        "orders-file",
        512,
        "arn:x",
        "r-1",
    )


def test_an_order_file_cancels_and_refunds_as_the_api_would_and_a_second_delivery_changes_nothing(
    api, keys, order_files
):
    cancelled, _ = redeemed(api, keys, order_id="o-1")
    refunded, _ = redeemed(api, keys, order_id="o-2")
    text = (
        HEADER
        + f"o-1,CANCELLED,,,{AT},\no-2,PAID,10000,CNY,{AT},\no-2,REFUNDED,2000,CNY,2026-03-10T15:00:00+08:00,r-9\n"
    )

    first = order_files(text)
    before = api.items()
    again = order_files(text)

    assert first["events"] == 3 and first["new"] == 3 and again["new"] == 0
    assert [(r["refund_amount"], r["discount_reversed"]) for r in reversals(api, keys, cancelled)] == [
        (10000, 1500)
    ]
    assert [(r["refund_amount"], r["discount_reversed"]) for r in reversals(api, keys, refunded)] == [
        (2000, 300)
    ]
    assert api.items() == before
    assert reversals(api, keys, cancelled)[0]["reversed_by"] == "merchant:m-001"


def test_a_bad_line_refuses_the_whole_file_and_writes_nothing(api, keys, order_files):
    rid, _ = redeemed(api, keys, order_id="o-1")
    before = api.items()

    with pytest.raises(OrderFileError, match="line 3, amount"):
        order_files(HEADER + f"o-1,CANCELLED,,,{AT},\no-2,REFUNDED,12.50,CNY,{AT},\n")

    assert api.items() == before and reversals(api, keys, rid) == []


def test_a_redemption_without_an_order_outcome_after_the_grace_period_is_an_exception(
    api, keys, order_files, monkeypatch
):
    import coupons.orders_wiring

    answered, _ = redeemed(api, keys, order_id="o-1")
    silent, _ = redeemed(api, keys, order_id="o-2")
    service = coupons.orders_wiring.service()
    monkeypatch.setattr(service, "_clock", lambda: datetime.now(UTC).replace(year=datetime.now(UTC).year + 1))
    ledger_ids = {"answered": answered, "silent": silent}
    monkeypatch.setattr(service.ledger, "entries", lambda *a, **k: (
        [{"source_kind": "REDEMPTION", "redemption_id": r} for r in ledger_ids.values()], None))  # fmt: skip

    day = service.redemptions.redemption(silent)["business_date"]
    done = order_files(HEADER + f"o-1,PAID,10000,CNY,{AT},\n", key=f"order-files/m-001/{day}.csv")

    assert done["missing_outcomes"] == 1
    records, _ = ReconciliationStore(api.ddb, TABLE).exceptions(
        limit=50, cursor=None, cls="ORDER_OUTCOME_MISSING"
    )
    assert [(e["key"], e["status"]) for e in records] == [(silent, "OPEN")]
