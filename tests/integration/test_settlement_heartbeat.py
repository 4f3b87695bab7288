"""The deadline check (functions/settlement/heartbeat): fired at the tenant's deadline on day X, it says
whether the daily run of X (scheduled at 02:00 on X, settling X) is closed — X's own run, not X − 1's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import coupons.config
from coupons import settlement_wiring
from coupons.data.settlement import SettlementStore
from tests.integration.conftest import TABLE, FakeContext

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "settlement" / "heartbeat" / "handler.py"


@pytest.fixture
def heartbeat(aws, monkeypatch):
    monkeypatch.setenv("TENANT_TIME_ZONE", "Europe/Berlin")
    coupons.config.settings.cache_clear()
    settlement_wiring.reset()
    spec = importlib.util.spec_from_file_location("heartbeat_handler", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield lambda event: module.lambda_handler(event, FakeContext())
    coupons.config.settings.cache_clear()
    settlement_wiring.reset()


def run(store: SettlementStore, run_id: str, day: str, status: str) -> None:
    store.create_run({"run_id": run_id, "business_date": day, "status": status, "attempt": 1,
                      "execution_name": f"x-{run_id}", "requested_at": "2026-03-29T00:00:00Z"})  # fmt: skip


def test_the_check_at_six_on_x_looks_at_the_daily_run_of_x(aws, heartbeat):
    store = SettlementStore(aws, TABLE)
    run(store, "stl_20260328", "2026-03-28", "CLOSED")  # the day before: closed, but not the one due now
    run(store, "stl_20260329_t0", "2026-03-29", "CLOSED")  # X's intraday run is not its daily run

    # 06:00 CEST on 2026-03-29 (the day the clocks go forward) is 04:00Z.
    answer = heartbeat({"scheduled_at": "2026-03-29T04:00:00Z"})
    assert answer == {"business_date": "2026-03-29", "status": None, "overdue": True}

    run(store, "stl_20260329", "2026-03-29", "CLOSED")
    assert heartbeat({"scheduled_at": "2026-03-29T04:00:00Z"})["overdue"] is False
