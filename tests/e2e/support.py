"""What the e2e tests share: an HTTP client for the local stack's API, redeem / reverse, and waiting for
clearing."""

from __future__ import annotations

import time
import uuid

import boto3
import requests

TIMEOUT_S = 60
# The stream is read after the write; earlier tests of the session may have left it a backlog.
CLEARING_WAIT_S = 120


class Api:
    def __init__(self, base_url: str):
        self.base_url = base_url

    def call(self, method: str, path: str, key: str, body: dict | None = None, **params) -> requests.Response:
        return requests.request(
            method,
            f"{self.base_url}{path}",
            json=body,
            params=params or None,
            headers={"x-api-key": key},
            timeout=TIMEOUT_S,
        )

    def ok(self, method: str, path: str, key: str, body: dict | None = None, **params) -> dict:
        answer = self.call(method, path, key, body, **params)
        assert answer.status_code in (200, 201), f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def balance(self, account: str, key: str, **params) -> dict[str, int]:
        body = self.ok("GET", f"/v1/accounts/{account}/balance", key, **params)
        return {b["currency"]: b["amount"] for b in body["balances"]}


def redeem(api: Api, key: str, merchant_id: str, code: str, order_amount: int) -> dict:
    return api.ok(
        "POST",
        "/v1/redemptions",
        key,
        {
            "code": code,
            "merchant_id": merchant_id,
            "store_id": "s-1",
            "order_amount": order_amount,
            "currency": "CNY",
            "order_id": f"o-{uuid.uuid4().hex[:10]}",
        },
    )


def reverse(api: Api, key: str, redemption_id: str, amount: int | None) -> dict:
    body = {} if amount is None else {"amount": amount}
    return api.ok("POST", f"/v1/redemptions/{redemption_id}/reversals", key, body)


def wait_for_clearing(api: Api, key: str, redemption_id: str) -> dict:
    deadline = time.monotonic() + CLEARING_WAIT_S
    while True:
        clearing = api.ok("GET", f"/v1/redemptions/{redemption_id}", key)["clearing"]
        if clearing["status"] == "CLEARED":
            return clearing
        assert clearing == {"status": "PENDING"}
        assert time.monotonic() < deadline, f"{redemption_id} not cleared in {CLEARING_WAIT_S} s"
        time.sleep(0.1)


def aws_client(local_stack: dict, service: str):
    """A boto3 client on the local stack's moto, with fake credentials."""
    return boto3.client(
        service,
        endpoint_url=local_stack["moto_endpoint"],
        region_name=local_stack["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
    )
