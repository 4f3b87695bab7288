"""A reconciliation run on moto: the simulated bank's statement file of a settled day, with injected
differences, through start → match → compensate → complete (the state machine's steps, in order)."""

from __future__ import annotations

import dataclasses
import gzip
import io

import pytest

from coupons.channels.simulated import SimulatedBank
from coupons.data.channel_statements import ChannelStatementStore
from coupons.data.reconciliation import ReconciliationStore
from coupons.domain import settlement as rules
from coupons.domain.reconciliation import channel_bill, wechat
from coupons.domain.reconciliation import compensation as comp
from coupons.domain.reconciliation.differences import Difference, Injection
from coupons.domain.reconciliation.formats import read_statement
from coupons.domain.reconciliation.matcher import MatchConfig, match
from coupons.domain.reconciliation.records import ReconException
from coupons.services.channel_statements import publish_statement
from coupons.services.reconciliation import Reconciliation, execution_name_of
from tests.integration.test_settlement_journals import with_fees
from tests.integration.test_settlement_steps import (
    BANK_TABLE,
    BUCKET,
    MAIN_TABLE,
    RUN,
    moto_world,
    post_the_day,
)

STATEMENT_DAY = "2026-03-10"  # the FixedClock's 01:00 UTC is 09:00 in Asia/Shanghai: the bank's day


class Recon:
    def __init__(self, world):
        self.world = world
        world.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        self.files = ChannelStatementStore(world.s3, BUCKET)
        self.store = ReconciliationStore(world.ddb, MAIN_TABLE)
        self.service = Reconciliation(
            self.store, self.files, world.store, world.ledger, lambda: world.bank,
            time_zone="Asia/Shanghai", policy=comp.Policy(fee_tolerance={"CNY": 100}), clock=world.clock,
            lines_per_bucket=2, formats={"wechatpay": wechat.NAME},
        )  # fmt: skip

    def publish(self, inject):
        return publish_statement(self.world.bank, self.files, channel_name="simulated",
                                 statement_date=STATEMENT_DAY, time_zone="Asia/Shanghai", inject=inject)  # fmt: skip

    def run(self, published):
        started = self.service.start(bucket=BUCKET, key=published.key, version_id=published.version_id,
                                     execution=execution_name_of(published.key, published.version_id))  # fmt: skip
        if not started["proceed"]:
            return started
        cursor = self.service.match(started["run_id"])
        while cursor.get("more_buckets"):  # the state machine's MoreBuckets? loop, a bucket an invocation
            cursor = self.service.match_bucket(started["run_id"], bucket=cursor["next_bucket"])
        if cursor.get("settle"):
            self.service.settle(started["run_id"])
        step = {"start": 0, "more": True}
        while step["more"]:  # the state machine's loop, 2 exceptions a chunk
            step = self.service.compensate(started["run_id"], start=step["start"], limit=2)
        return {**started, **self.service.complete(started["run_id"])}

    def exceptions(self):
        records, _ = self.store.exceptions(limit=100, cursor=None)
        return {(e["cls"], e["key"]): e for e in records}


@pytest.fixture
def recon():
    with moto_world() as world:
        # The bank books on the world's clock too: its statement day is the FixedClock's.
        world.bank = SimulatedBank(world.ddb, BANK_TABLE, clock=world.clock)
        post_the_day(world)
        world.settle()
        yield Recon(world)


def four_differences():
    m1, m2, platform, b1 = (rules.instruction_id(RUN, p, "CNY") for p in ("merchant:m1", "merchant:m2", "platform", "brand:b1"))
    return [Injection(Difference.MISSING, m1), Injection(Difference.RETURNED, m2),
            Injection(Difference.FEE, platform, 30), Injection(Difference.PREVIOUS_DAY, b1)]  # fmt: skip


def test_the_simulated_banks_statement_is_written_to_the_tenants_bucket_under_its_channel_and_date(recon):
    published = recon.publish("")

    assert published.key == f"channel-statements/simulated/{STATEMENT_DAY}.csv.gz"
    body = recon.world.s3.get_object(Bucket=BUCKET, Key=published.key, VersionId=published.version_id)["Body"].read()
    text = gzip.decompress(body).decode()
    assert text.startswith("#bill,coupons-bill,1\n#channel,simulated\n")
    assert published.lines == 4 and text.rstrip().endswith("#end,4")


def test_an_injection_spec_changes_the_file_and_names_the_exception_each_must_become(recon):
    published = recon.publish("missing=1,returned=1,fee=1,cutoff=1")

    assert sorted(str(i.expected) for i in published.injected) == [
        "FEE_MISMATCH", "MISSING_AT_CHANNEL", "STATUS_MISMATCH", "TIMING"]  # fmt: skip


def test_each_injected_difference_becomes_one_exception_of_its_class_and_is_compensated(recon):
    published = recon.publish(four_differences())

    done = recon.run(published)

    found = recon.exceptions()
    assert sorted((cls, key) for cls, key in found) == sorted((str(i.expected), i.key) for i in published.injected)
    actions = {cls: e["action"] for (cls, _), e in found.items()}
    assert actions == {"MISSING_AT_CHANNEL": "REMATCH", "STATUS_MISMATCH": "RETURN_AND_REVERSE",
                       "FEE_MISMATCH": "ADJUST_FEE", "TIMING": "CLOSE"}  # fmt: skip
    assert all(e["status"] == "RESOLVED" and e["resolution"]["by"] == "system:reconciliation" for e in found.values())
    assert done["completed"]["confirmed"] == 3 and done["completed"]["lines"] == 4  # 4 transfers, one missing, one return line
    assert recon.store.run(done["run_id"])["status"] == "COMPLETED"
    # The returned payout is owed again: merchant:m2 is +2500 in the ledger, due the next day.
    returned = found[("STATUS_MISMATCH", f"{rules.instruction_id(RUN, 'merchant:m2', 'CNY')}/RETURN")]
    compensation = recon.store.compensation(returned["compensation_id"])
    journal = recon.world.ledger.journal(compensation["journal_id"])
    assert sum(leg["amount"] for leg in journal["legs"]) == 0
    assert {leg["account"]: leg["amount"] for leg in journal["legs"]}["merchant:m2"] == 2500


def test_one_file_version_delivered_twice_is_one_run_and_a_replayed_run_changes_nothing(recon):
    published = recon.publish(four_differences())
    first = recon.run(published)
    before = recon.world.table()

    again = recon.run(published)
    recon.service.match(first["run_id"])  # a retried step: every write is derived and conditional
    recon.service.compensate(first["run_id"], start=0, limit=50)

    assert again == {"run_id": first["run_id"], "proceed": False}
    assert recon.world.table() == before


def test_a_re_uploaded_file_is_a_new_version_and_a_new_run_naming_the_same_exceptions(recon):
    first = recon.run(recon.publish(four_differences()))

    second = recon.run(recon.publish(four_differences()))

    assert second["run_id"] != first["run_id"]
    assert len(recon.exceptions()) == 4


def test_after_the_compensations_the_next_days_file_reconciles_clean(recon):
    recon.run(recon.publish(four_differences()))
    before = set(recon.exceptions())

    nxt = publish_statement(recon.world.bank, recon.files, channel_name="simulated", statement_date="2026-03-11",
                            time_zone="Asia/Shanghai")  # fmt: skip
    done = recon.run(nxt)

    assert done["completed"]["by_class"] == {} and done["opened"] == []
    assert set(recon.exceptions()) == before


@pytest.fixture
def recon_with_party_fees():
    with moto_world() as world:
        world.bank = SimulatedBank(world.ddb, BANK_TABLE, clock=world.clock)
        # The channel charges 0.6 % (10..20) per transfer, borne by the party: a payout moves net - fee.
        with_fees(world, bps=60, minimum={"CNY": 10}, maximum={"CNY": 20}, borne_by="PARTY")
        post_the_day(world)
        world.settle()
        yield Recon(world)


def test_a_day_paid_with_party_borne_channel_fees_reconciles_clean(recon_with_party_fees):
    """Each line moves net - fee and states the fee: both what our transfers say (the matcher), and what
    `settlement:simulated` holds (the ledger check)."""
    recon = recon_with_party_fees
    done = recon.run(recon.publish(""))

    assert done["completed"]["by_class"] == {} and done["opened"] == []
    assert recon.exceptions() == {}


def out_of_id_order(recon, published):
    """The same file with its lines in another order (a real channel's: by time, not by our id),
    uploaded as a new version of the same key."""
    body = recon.world.s3.get_object(Bucket=BUCKET, Key=published.key, VersionId=published.version_id)["Body"]
    lines = list(read_statement(body, channel_bill.NAME, channel="simulated", statement_date=STATEMENT_DAY))
    shuffled = sorted(lines, key=lambda x: x.instruction_id or "", reverse=True)
    assert [x.instruction_id for x in shuffled] != sorted(x.instruction_id or "" for x in shuffled)
    text = io.StringIO()
    channel_bill.write(text, channel="simulated", statement_date=STATEMENT_DAY, time_zone="Asia/Shanghai",
                       lines=shuffled)  # fmt: skip
    answer = recon.world.s3.put_object(Bucket=BUCKET, Key=published.key, Body=gzip.compress(text.getvalue().encode(), mtime=0))
    return dataclasses.replace(published, version_id=answer["VersionId"])


def test_a_statement_out_of_id_order_is_matched_bucket_by_bucket_into_the_same_exceptions_as_the_sorted_file(recon):
    published = out_of_id_order(recon, recon.publish(four_differences()))

    done = recon.run(published)

    found = recon.exceptions()
    assert sorted(found) == sorted((str(i.expected), i.key) for i in published.injected)
    actions = {cls: e["action"] for (cls, _), e in found.items()}
    assert actions == {"MISSING_AT_CHANNEL": "REMATCH", "STATUS_MISMATCH": "RETURN_AND_REVERSE",
                       "FEE_MISMATCH": "ADJUST_FEE", "TIMING": "CLOSE"}  # fmt: skip
    assert done["completed"]["confirmed"] == 3 and done["completed"]["lines"] == 4
    assert done["completed"]["by_class"] == {str(i.expected): 1 for i in published.injected}
    run = recon.store.run(done["run_id"])
    assert run["status"] == "COMPLETED" and run["buckets"] == 2
    assert sorted(run["exception_ids"]) == sorted(e["exception_id"] for e in found.values())


def test_a_retried_bucket_step_or_settle_writes_the_same_buckets_and_changes_nothing(recon):
    published = out_of_id_order(recon, recon.publish(four_differences()))
    first = recon.run(published)
    keys = sorted(o["Key"] for o in recon.world.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"reconciliation-runs/{first['run_id']}/buckets/")["Contents"])
    bodies = {k: recon.world.s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}
    before = recon.world.table()

    cursor = recon.service.match(first["run_id"])  # retried steps: the same buckets, every write conditional
    recon.service.match_bucket(first["run_id"], bucket=1)
    recon.service.match_bucket(first["run_id"], bucket=0)
    recon.service.settle(first["run_id"])
    recon.service.compensate(first["run_id"], start=0, limit=50)

    assert cursor == {"run_id": first["run_id"], "buckets": 2, "next_bucket": 0, "more_buckets": True,
                      "settle": True, "start": 0, "exceptions": 0}  # fmt: skip
    assert {k: recon.world.s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys} == bodies
    assert len(keys) == 4  # per bucket its chunk and its result, named by the run and the bucket
    assert recon.world.table() == before


def wechat_bill(rows: list[tuple[str, str, str, str]]) -> bytes:
    """A WeChat Pay trade bill (bill_type ALL) of SUCCESS rows: (time, 商户订单号, 应结订单金额, 手续费)."""
    def row(time, order, amount, fee, n):
        fields = {c: "" for c in wechat.COLUMNS} | {
            "交易时间": time, "公众账号ID": "wx2421b1c4370ec43b", "商户号": "1900000109", "特约商户号": "0",
            "微信订单号": f"42000001232026031000000000{n:02d}", "商户订单号": order, "交易类型": "NATIVE",
            "交易状态": "SUCCESS", "付款银行": "CMC", "货币种类": "CNY", "应结订单金额": amount, "代金券金额": "0.00",
            "微信退款单号": "0", "商户退款单号": "0", "退款金额": "0.00", "充值券退款金额": "0.00", "商品名称": "券包结算",
            "手续费": fee, "费率": "0.60%", "订单金额": amount, "申请退款金额": "0.00"}  # fmt: skip
        return ",".join("`" + fields[c] for c in wechat.COLUMNS)

    def total(values, decimals):
        return f"{sum(int(v.replace('.', '')) for v in values) / 10**decimals:.{decimals}f}"

    amounts, fees = [r[2] for r in rows], [r[3] for r in rows]
    text = "\r\n".join([
        ",".join(wechat.COLUMNS), *(row(*r, n) for n, r in enumerate(rows)), ",".join(wechat.SUMMARY),
        ",".join("`" + v for v in (str(len(rows)), total(amounts, 2), "0.00", "0.00", total(fees, 5),
                                   total(amounts, 2), "0.00")),
    ]) + "\r\n"  # fmt: skip
    return gzip.compress(("\ufeff" + text).encode(), mtime=0)


def test_a_wechat_pay_bill_in_time_order_reconciles_through_the_steps_as_the_one_stream_match_of_its_lines(recon):
    platform, b1, m1, m2 = (rules.instruction_id(RUN, p, "CNY") for p in ("platform", "brand:b1", "merchant:m1", "merchant:m2"))
    by_time = sorted([(platform, "7.80", "0.00000"), (b1, "30.20", "0.10000"),
                      ("ins_20260310_never_ours", "1.00", "0.00000")], reverse=True)  # fmt: skip
    rows = [(f"2026-03-10 0{9 + n // 10}:{n % 10}0:00", *r) for n, r in enumerate(by_time)]
    assert [r[1] for r in rows] != sorted(r[1] for r in rows)  # time order is not our id order
    transfers, records = recon.service.transfers("wechatpay", STATEMENT_DAY), recon.service.party_records(STATEMENT_DAY)
    key = f"channel-statements/wechatpay/{STATEMENT_DAY}.csv.gz"
    version = recon.world.s3.put_object(Bucket=BUCKET, Key=key, Body=wechat_bill(rows))["VersionId"]

    done = recon.run(type("Published", (), {"key": key, "version_id": version})())

    body = recon.world.s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"]
    lines = list(read_statement(body, wechat.NAME, channel="wechatpay", statement_date=STATEMENT_DAY))
    expected, _ = match(lines, transfers, MatchConfig("wechatpay", STATEMENT_DAY, "Asia/Shanghai"), party_records=records)
    expected = {x.exception_id: (str(x.cls), x.key) for x in expected if isinstance(x, ReconException)}
    found = recon.exceptions()
    assert {e["exception_id"]: k for k, e in found.items()} == expected
    assert set(found) == {("FEE_MISMATCH", b1), ("MISSING_AT_CHANNEL", m1), ("MISSING_AT_CHANNEL", m2),
                          ("UNKNOWN_AT_CHANNEL", "4200000123202603100000000000")}  # fmt: skip
    assert done["completed"]["confirmed"] == 2 and done["completed"]["lines"] == 3
    assert recon.store.run(done["run_id"])["buckets"] == 2
