"""Re-clear (infra.reclear → coupons.services.reclear): what is still pending clearing is posted through the
clearing code, once, whatever the stream delivered (the dead-letter queue's remedy)."""

from coupons.data.redemptions import RedemptionStore
from infra.reclear import reclear
from tests.events import load
from tests.integration.conftest import TABLE
from tests.integration.test_clearing_handler import RVS, balances, store, table  # noqa: F401 - fixtures


def test_a_redemption_and_its_reversal_never_delivered_are_posted_by_a_reclear_in_order(ledger, aws):  # noqa: F811
    # The items are in the table, their stream records were given up (dead-letter queue, then aged out).
    store(aws, load("clearing/reversal_batch"))
    store(aws, load("clearing/redemption_batch"))
    assert RedemptionStore(aws, TABLE).pending_clearing("9999-12-31")
    summary = reclear(aws, TABLE)
    assert summary["failed"] == {}
    assert summary["posted"] >= 2
    assert RedemptionStore(aws, TABLE).pending_clearing("9999-12-31") == []
    assert any(i["pk"].startswith("JOURNAL#") and RVS.removeprefix("rvs_") in i["pk"] for i in table(aws))


def test_a_reclear_posts_what_the_stream_would_have_and_a_second_one_writes_nothing(ledger, clearing, aws):  # noqa: F811
    redemption, reversal = load("clearing/redemption_batch"), load("clearing/reversal_batch")
    store(aws, redemption)
    store(aws, reversal)
    reclear(aws, TABLE)
    after_reclear = balances(ledger)
    items = table(aws)
    # Delivered now, late, by the stream: nothing more is posted (clearing's own idempotence).
    assert clearing(redemption) == [] and clearing(reversal) == []
    assert balances(ledger) == after_reclear
    again = reclear(aws, TABLE)
    assert (again["posted"], again["failed"]) == (0, {})
    assert table(aws) == items
    assert after_reclear != {"platform": 0, "brand:brand-demo": 0, "merchant:m-001": 0}
