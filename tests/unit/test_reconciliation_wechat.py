"""WeChat Pay's trade bill as published: golden files for every column and for the statement lines
it maps to; its summary checked; amounts in 元 read exactly."""

import json
from pathlib import Path

import pytest

from coupons.domain.reconciliation import formats, wechat
from coupons.domain.reconciliation.lines import StatementFormatError

GOLDEN = Path(__file__).parent / "golden" / "wechat"
BILL = (GOLDEN / "tradebill_all.csv").read_bytes()
COLUMNS = json.loads((GOLDEN / "tradebill_all.columns.json").read_text(encoding="utf-8"))
COLUMNS.pop("_comment")
LINES = json.loads((GOLDEN / "tradebill_all.lines.json").read_text(encoding="utf-8"))


def read(raw: bytes):
    import io

    return list(
        formats.read_statement(io.BytesIO(raw), wechat.NAME, channel="wechatpay", statement_date="2026-11-24")
    )


def test_the_golden_file_names_every_column_of_the_all_bill():
    assert list(COLUMNS) == list(wechat.COLUMNS)


@pytest.mark.parametrize("column", list(wechat.COLUMNS))
def test_each_column_of_the_golden_bill_is_read_as_the_golden_file_says(column):
    lines = read(BILL)
    amounts = set(wechat.AMOUNTS) | set(wechat.SIGNED)
    got = [x.extra["amounts"][column] if column in amounts else x.extra["raw"][column] for x in lines]
    assert got == COLUMNS[column]


def test_the_golden_bill_maps_to_the_golden_statement_lines():
    assert [x.evidence() for x in read(BILL)] == LINES


def test_the_parser_is_found_by_name_in_the_registry_beside_the_project_s_own():
    assert {"coupons-bill", wechat.NAME} <= set(formats.formats())
    assert isinstance(formats.parser_for(wechat.NAME), formats.StatementFormat)


def test_a_byte_order_mark_and_bare_newlines_are_accepted():
    assert [x.evidence() for x in read(b"\xef\xbb\xbf" + BILL.replace(b"\r\n", b"\n"))] == LINES


def test_columns_are_found_by_name_whatever_their_order():
    text = BILL.decode()
    rows = [r.split(",") for r in text.split("\r\n")[:4]]
    order = list(reversed(range(len(rows[0]))))
    swapped = (
        "\r\n".join(",".join(r[i] for i in order) for r in rows)
        + "\r\n"
        + "\r\n".join(text.split("\r\n")[4:])
    )
    assert [x.evidence() for x in read(swapped.encode())] == LINES


def test_the_success_bill_without_refund_columns_is_read_too():
    keep = [
        c
        for c in wechat.COLUMNS
        if c
        not in {
            "微信退款单号",
            "商户退款单号",
            "退款金额",
            "充值券退款金额",
            "退款类型",
            "退款状态",
            "申请退款金额",
        }
    ]
    header = ",".join(keep)
    row = {"交易时间": "2026-11-24 09:15:02", "微信订单号": "42000001", "商户订单号": "ins_1", "交易状态": "SUCCESS",
           "货币种类": "CNY", "应结订单金额": "1.00", "代金券金额": "0.00", "手续费": "0.01000", "订单金额": "1.00"}  # fmt: skip
    body = ",".join("`" + row.get(c, "") for c in keep)
    summary = ",".join(wechat.SUMMARY) + "\n`1,`1.00,`0.00,`0.00,`0.01000,`1.00,`0.00\n"
    (only,) = read(f"{header}\n{body}\n{summary}".encode())
    assert (only.amount, only.fee, only.instruction_id) == (100, 1, "ins_1")


def _tamper(old: str, new: str) -> bytes:
    text = BILL.decode()
    assert old in text
    return text.replace(old, new, 1).encode()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [("`3,`218.45", "`2,`218.45", "总交易单数"),
     ("`218.45", "`218.46", "应结订单总金额"),
     ("`1.19000", "`1.18000", "手续费总金额"),
     ("`223.45", "`223.44", "订单总金额"),
     ("`0.74000", "`0.74001", "more than 2 decimals"),
     ("`123.45,`0.00,`0,", "123.45,`0.00,`0,", "backtick"),
     ("`REFUND", "`REVOKED", "交易状态"),
     ("`ORIGINAL,`SUCCESS", "`ORIGINAL,`WAITING", "退款状态"),
     ("`2026-11-24 09:15:02", "`2026/11/24 09:15:02", "交易时间"),
     ("`CNY,`95.00", "`XYZ,`95.00", "unknown currency"),
     ("`CNY,`95.00", "`USD,`95.00", "one currency"),
     ("交易时间,公众账号ID", "交易日期,公众账号ID", "header")],
)  # fmt: skip
def test_a_bill_that_does_not_add_up_or_is_not_wechat_s_format_is_refused(old, new, message):
    with pytest.raises(StatementFormatError, match=message):
        read(_tamper(old, new))


def test_a_bill_cut_before_its_summary_is_truncated():
    text = BILL.decode()
    with pytest.raises(StatementFormatError, match="truncated"):
        read(text[: text.index("总交易单数")].encode())
    with pytest.raises(StatementFormatError, match="truncated"):
        read(text[: text.rindex("`3,")].encode())


def test_a_bill_without_trades_is_its_header_and_a_zero_summary():
    empty = (
        ",".join(wechat.COLUMNS)
        + "\r\n"
        + ",".join(wechat.SUMMARY)
        + "\r\n`0,`0.00,`0.00,`0.00,`0.00000,`0.00,`0.00\r\n"
    )
    assert read(empty.encode()) == []
