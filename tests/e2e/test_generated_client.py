"""An integrator's client: generated at test time by openapi-python-client from the served document,
driving the checkout and settlement over HTTP with raise_on_unexpected_status=True, using only its
parsed models and the auth the document declares."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests

from tests.e2e.test_settlement_end_to_end import settle

pytestmark = pytest.mark.e2e
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def client_package(base_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    document = folder / "openapi.json"
    document.write_text(requests.get(f"{base_url}/v1/openapi.json", timeout=10).text)
    subprocess.run(
        [str(GENERATOR), "generate", "--path", str(document), "--meta", "none",
         "--output-path", str(folder / "coupons_client")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("coupons_client"), json.loads(document.read_text())
    finally:
        sys.path.remove(str(folder))


def test_a_generated_client_drives_checkout_to_statement(client_package, base_url, keys, local_stack):
    package, doc = client_package
    from coupons_client import AuthenticatedClient
    from coupons_client.api.campaigns import activate_campaign, create_campaign
    from coupons_client.api.clearing import get_account_balance
    from coupons_client.api.coupons import issue_coupons
    from coupons_client.api.redemptions import (
        get_redemption,
        quote_redemption,
        redeem_coupon,
        reverse_redemption,
    )
    from coupons_client.api.settlement import get_statement, start_settlement_run
    from coupons_client.models import (
        CampaignTerms,
        IssueRequest,
        QuoteRequest,
        RedeemRequest,
        ReversalRequest,
        StartRun,
    )  # fmt: skip

    (scheme,) = doc["components"]["securitySchemes"].values()
    assert (scheme["type"], scheme["in"]) == ("apiKey", "header")

    def as_(principal):
        return AuthenticatedClient(
            base_url=base_url, token=keys[principal], prefix="", auth_header_name=scheme["name"],
            raise_on_unexpected_status=True,
        )  # fmt: skip

    admin, merchant = as_("admin"), as_("merchant:m-001")
    terms = CampaignTerms.from_dict(
        {"name": "client", "brand_id": "brand-demo", "type": "FIXED", "currency": "CNY", "amount": 1000,
         "min_order": 5000, "valid_days": 30, "total_quantity": 10, "settlement_cycle": "T+0",
         "verification_methods": ["CODE"]}
    )  # fmt: skip
    campaign = create_campaign.sync_detailed(client=admin, body=terms, idempotency_key="gc-1")
    assert campaign.status_code == 201
    campaign_id = campaign.parsed.campaign_id
    assert activate_campaign.sync(campaign_id, client=admin).status.value == "ACTIVE"
    issued = issue_coupons.sync_detailed(campaign_id, client=admin, body=IssueRequest(user_id="u-client"))
    assert issued.status_code == 201
    code = issued.parsed.code
    order = {
        "merchant_id": "m-001",
        "store_id": "s-1",
        "order_amount": 10000,
        "currency": "CNY",
        "code": code,
    }
    quote = quote_redemption.sync(client=merchant, body=QuoteRequest.from_dict(order))
    assert (quote.discount, quote.payable) == (1000, 9000)
    redeemed = redeem_coupon.sync_detailed(
        client=merchant,
        body=RedeemRequest.from_dict({**order, "order_id": "o-client"}),
        idempotency_key="gc-2",
    )
    assert redeemed.status_code == 201
    redemption_id = redeemed.parsed.redemption_id
    deadline = time.monotonic() + 30
    while (read := get_redemption.sync(redemption_id, client=merchant)).clearing.status.value != "CLEARED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    reversal = reverse_redemption.sync_detailed(
        redemption_id, client=merchant, body=ReversalRequest(amount=4000), idempotency_key="gc-3"
    )
    assert reversal.status_code == 201 and reversal.parsed.refund_amount == 4000
    balance = get_account_balance.sync("merchant:m-001", client=merchant)
    assert balance.account == "merchant:m-001"
    day_over = date.today() - timedelta(days=2)  # format: date, so the model takes a date
    started = start_settlement_run.sync_detailed(client=admin, body=StartRun(settlement_date=day_over))
    assert started.status_code in (200, 202) and started.parsed.business_date == day_over.isoformat()
    business_date = read.clearing.additional_properties["business_date"]
    # The T+0 redemption is due today and came before the start of today + 5: that daily run pays it
    # whatever the hour (an intraday run of today would not after 22:00), and no other module on the
    # session's stack settles that date (tests/e2e/test_settlement_end_to_end.py takes + 1 … + 4).
    run = settle(local_stack, (date.fromisoformat(business_date) + timedelta(days=5)).isoformat())
    statement = get_statement.sync(run["run_id"], "merchant:m-001", client=merchant)
    assert statement.party == "merchant:m-001"
