"""/v1/reconciliation over the API function on moto: the finance role, listings with signed cursors,
resolution with the actions a class allows, four-eyes."""

from __future__ import annotations

import pytest

from coupons.data.reconciliation import ReconciliationStore
from coupons.domain.reconciliation.records import ExceptionClass, make
from coupons.services.reconciliation import exception_record
from tests.integration.conftest import TABLE


def seed(ddb, cls: ExceptionClass, key: str, date: str = "2026-03-10") -> str:
    exc = make(cls, date=date, channel="simulated", key=key, currency="CNY", amount_at_stake=30,
               ours={"instruction_id": key, "amount": 100}, theirs=None, detail="seeded")  # fmt: skip
    ReconciliationStore(ddb, TABLE).record_exception(exception_record(exc), run_id="rcn_x", at="2026-03-10T01:00:00Z")
    return exc.exception_id


@pytest.fixture
def finance(api, keys) -> dict[str, str]:
    made = {}
    for principal in ("finance", "finance:alice", "finance:bob"):
        answer = api.call("POST", "/v1/api-keys", api_key=keys["admin"], body={"principal": principal})
        assert answer.status == 201, answer.raw
        made[principal] = answer.json["api_key"]
    return made


@pytest.fixture
def four_eyes(monkeypatch):
    import dependencies

    monkeypatch.setenv("RECONCILIATION_FOUR_EYES", "true")
    dependencies.reconciliation_review.cache_clear()
    yield
    dependencies.reconciliation_review.cache_clear()


def test_a_finance_key_reads_money_but_creates_no_campaign_or_key(api, keys, finance):
    key = finance["finance"]
    assert api.call("GET", "/v1/reconciliation/exceptions", api_key=key).status == 200
    assert api.call("GET", "/v1/accounts/platform/balance", api_key=key).status == 200
    assert api.call("GET", "/v1/accounts/suspense:simulated/balance", api_key=key).status == 200
    campaign = api.call("POST", "/v1/campaigns", api_key=key, body={"name": "x"})
    assert campaign.status == 403 and campaign.json["code"] == "forbidden"
    assert api.call("POST", "/v1/api-keys", api_key=key, body={"principal": "admin"}).status == 403


def test_merchants_and_issuers_may_not_read_reconciliation(api, keys):
    for who in ("merchant:m-001", "issuer:brand-a"):
        assert api.call("GET", "/v1/reconciliation/runs", api_key=keys[who]).status == 403
        assert api.call("GET", "/v1/accounts/suspense:simulated/balance", api_key=keys[who]).status == 404


def test_exceptions_are_listed_by_status_class_and_date_in_pages_with_signed_cursors(api, finance):
    key = finance["finance"]
    fee = seed(api.ddb, ExceptionClass.FEE_MISMATCH, "ins_a")
    seed(api.ddb, ExceptionClass.TIMING, "ins_b")
    seed(api.ddb, ExceptionClass.FEE_MISMATCH, "ins_c", date="2026-03-11")

    first = api.call("GET", "/v1/reconciliation/exceptions", api_key=key, query={"class": "FEE_MISMATCH", "limit": "1"})
    assert first.status == 200, first.raw
    ids, page = [], first
    while True:  # a filtered page may hold fewer than `limit` (DynamoDB filters after reading): walk on
        ids += [e["exception_id"] for e in page.json["items"]]
        if not page.json["next_cursor"]:
            break
        page = api.call("GET", "/v1/reconciliation/exceptions", api_key=key,
                        query={"class": "FEE_MISMATCH", "limit": "1", "cursor": page.json["next_cursor"]})  # fmt: skip
    assert len(ids) == 2 and fee in ids
    by_date = api.call("GET", "/v1/reconciliation/exceptions", api_key=key, query={"date": "2026-03-10", "status": "OPEN"})
    assert {e["class"] for e in by_date.json["items"]} == {"FEE_MISMATCH", "TIMING"}
    other_query = api.call("GET", "/v1/reconciliation/exceptions", api_key=key,
                           query={"class": "TIMING", "cursor": first.json["next_cursor"]})  # fmt: skip
    assert other_query.status == 400
    bad = api.call("GET", "/v1/reconciliation/exceptions", api_key=key, query={"class": "NOPE"})
    assert bad.status == 400


def test_finance_resolves_with_an_allowed_action_recording_who_and_why_and_it_stays_resolved(api, keys, finance):
    exception_id = seed(api.ddb, ExceptionClass.FEE_MISMATCH, "ins_a")
    path = f"/v1/reconciliation/exceptions/{exception_id}/resolve"

    refused = api.call("POST", path, api_key=finance["finance"], body={"action": "RESEND", "note": "try"})
    admin = api.call("POST", path, api_key=keys["admin"], body={"action": "ACCEPT_CHANNEL", "note": "ok"})
    done = api.call("POST", path, api_key=finance["finance"], body={"action": "ACCEPT_CHANNEL", "note": "bank is right"})
    again = api.call("POST", path, api_key=finance["finance"], body={"action": "ACCEPT_CHANNEL", "note": "twice"})

    assert refused.status == 409 and refused.json["code"] == "action_not_allowed"
    assert admin.status == 403
    assert done.status == 200, done.raw
    assert done.json["status"] == "RESOLVED"
    assert (done.json["resolution"]["by"], done.json["resolution"]["note"]) == ("finance", "bank is right")
    assert again.status == 409
    listed = api.call("GET", "/v1/reconciliation/exceptions", api_key=finance["finance"], query={"status": "RESOLVED"})
    assert [e["exception_id"] for e in listed.json["items"]] == [exception_id]


def test_with_four_eyes_the_approver_is_not_the_proposer(api, finance, four_eyes):
    exception_id = seed(api.ddb, ExceptionClass.UNKNOWN_AT_CHANNEL, "SIMBANK-X")
    path = f"/v1/reconciliation/exceptions/{exception_id}/resolve"
    body = {"action": "WRITE_OFF", "note": "ours after all", "account": "platform"}

    proposed = api.call("POST", path, api_key=finance["finance:alice"], body=body)
    self_approved = api.call("POST", path, api_key=finance["finance:alice"], body=body)
    approved = api.call("POST", path, api_key=finance["finance:bob"], body={**body, "note": "checked"})

    assert proposed.status == 202 and proposed.json["status"] == "OPEN"
    assert self_approved.status == 409 and self_approved.json["code"] == "second_approver_required"
    assert approved.status == 200, approved.raw
    resolution = approved.json["resolution"]
    assert (resolution["by"], resolution["approved_by"], resolution["account"]) == ("finance:alice", "finance:bob", "platform")
    assert [h["by"] for h in approved.json["history"]] == ["finance:alice", "finance:alice"]


def test_a_write_off_names_its_account_and_an_unknown_exception_is_404(api, finance):
    exception_id = seed(api.ddb, ExceptionClass.UNKNOWN_AT_CHANNEL, "SIMBANK-Y")
    missing = api.call("POST", f"/v1/reconciliation/exceptions/{exception_id}/resolve", api_key=finance["finance"],
                       body={"action": "WRITE_OFF", "note": "x"})  # fmt: skip
    unknown = api.call("GET", "/v1/reconciliation/exceptions/rex_20260310_nope", api_key=finance["finance"])
    assert missing.status == 400 and missing.json["field"] == "account"
    assert unknown.status == 404 and unknown.json["code"] == "reconciliation_exception_not_found"
