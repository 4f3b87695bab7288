"""WeChat Pay's trade bill (交易账单, `downloadbill` / `tradebill`, bill_type ALL, SUCCESS or REFUND) as
WeChat publishes it: a header row of Chinese column names (their order is not fixed: columns are
found by name), detail rows whose every field starts with a backtick (`` ` ``, so spreadsheets keep
long numbers), then the summary header (总交易单数,…) and one summary row. Amounts are in 元 (CNY);
fees are given with 5 decimals (`0.04000`), read exactly (`0.04001` is refused); times are Beijing
time. The file carries no date and no merchant: the statement's date is the bill_date asked for.

Mapping to statement lines:
  交易状态 SUCCESS -> COLLECTION (money in), amount 应结订单金额, reference 微信订单号
  交易状态 REFUND  -> RETURN of that order, amount 退款金额, reference 微信退款单号;
                     退款状态 SUCCESS / PROCESSING -> SUCCESS (a refund is billed when it is accepted),
                     REFUNDCLOSE / CHANGE -> FAILED
  商户订单号 is our instruction id in both.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from coupons.domain.money import is_currency
from coupons.domain.reconciliation.amounts import AmountFormatError, parse_major
from coupons.domain.reconciliation.lines import LineStatus, LineType, StatementFormatError, StatementLine

NAME = "wechatpay-tradebill"
ZONE = ZoneInfo("Asia/Shanghai")

# Every column of the ALL bill, in WeChat's order (the SUCCESS bill leaves out the refund columns).
COLUMNS = (
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识",
    "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号",
    "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包",
    "手续费", "费率", "订单金额", "申请退款金额", "费率备注",
)  # fmt: skip
REQUIRED = ("交易时间", "微信订单号", "商户订单号", "交易状态", "货币种类", "应结订单金额", "手续费")
AMOUNTS = ("应结订单金额", "代金券金额", "退款金额", "充值券退款金额", "订单金额", "申请退款金额")
SIGNED = ("手续费",)  # a refund gives the fee back: negative
SUMMARY = (
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
)
SUMMED = {  # summary column -> the detail column it adds up
    "应结订单总金额": "应结订单金额",
    "退款总金额": "退款金额",
    "充值券退款总金额": "充值券退款金额",
    "手续费总金额": "手续费",
    "订单总金额": "订单金额",
    "申请退款总金额": "申请退款金额",
}
REFUND_STATUS = {
    "SUCCESS": LineStatus.SUCCESS,
    "PROCESSING": LineStatus.SUCCESS,
    "REFUNDCLOSE": LineStatus.FAILED,
    "CHANGE": LineStatus.FAILED,
}


def _unquote(number: int, column: str, text: str) -> str:
    if not text.startswith("`"):
        raise StatementFormatError("a WeChat field starts with a backtick", line=number, column=column)
    return text[1:]


class WeChatTradeBill:
    name = NAME

    def parse(self, text: Iterable[str], *, channel: str, statement_date: str) -> Iterator[StatementLine]:
        rows = enumerate(csv.reader(text), start=1)
        number, header = next(rows, (1, None))
        if not header:
            raise StatementFormatError(
                "an empty file: a WeChat bill has a header even without trades", line=number
            )
        header = [h.strip() for h in header]
        unknown = [h for h in header if h not in COLUMNS]
        missing = [h for h in REQUIRED if h not in header]
        if unknown or missing or len(set(header)) != len(header):
            raise StatementFormatError(
                f"not a WeChat trade bill header (unknown {unknown}, missing {missing})", line=number
            )
        sums = dict.fromkeys(SUMMED.values(), 0)
        count, currencies = 0, set()
        for number, row in rows:
            if row and row[0].strip() == SUMMARY[0]:
                self._summary(rows, number, row, header, sums, count, currencies)
                return
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise StatementFormatError(f"{len(row)} fields, the header has {len(header)}", line=number)
            raw = {column: _unquote(number, column, cell) for column, cell in zip(header, row, strict=True)}
            line = self._line(number, raw, channel, statement_date)
            currencies.add(line.currency)
            if len(currencies) > 1:
                raise StatementFormatError(
                    "a WeChat bill sums 元 over all rows: one currency per file", line=number
                )
            for column in sums:
                if column in raw:
                    sums[column] += line.extra["amounts"][column]
            count += 1
            yield line
        raise StatementFormatError("the file ends before its summary (总交易单数…): truncated")

    @staticmethod
    def _line(number: int, raw: dict[str, str], channel: str, statement_date: str) -> StatementLine:
        currency = raw["货币种类"]
        if not is_currency(currency):
            raise StatementFormatError(f"unknown currency {currency!r}", line=number, column="货币种类")
        try:
            moment = datetime.strptime(raw["交易时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZONE)
        except ValueError:
            raise StatementFormatError(
                f"{raw['交易时间']!r} is not YYYY-MM-DD HH:MM:SS", line=number, column="交易时间"
            ) from None
        amounts = {}
        for column in (*AMOUNTS, *SIGNED):
            if column in raw:
                try:
                    amounts[column] = parse_major(
                        raw[column] or "0", currency, signed=column in SIGNED, zero_padding=True
                    )
                except AmountFormatError as error:
                    raise StatementFormatError(str(error), line=number, column=column) from None
        state = raw["交易状态"]
        if state == "SUCCESS":
            kind, status, amount, reference = (
                LineType.COLLECTION,
                LineStatus.SUCCESS,
                amounts["应结订单金额"],
                raw["微信订单号"],
            )
        elif state == "REFUND":
            if "退款金额" not in raw or raw.get("退款状态") not in REFUND_STATUS:
                raise StatementFormatError(
                    f"a refund with status {raw.get('退款状态')!r}", line=number, column="退款状态"
                )
            kind, status, amount = LineType.RETURN, REFUND_STATUS[raw["退款状态"]], amounts["退款金额"]
            reference = raw.get("微信退款单号") or raw["微信订单号"]
        else:
            raise StatementFormatError(
                f"交易状态 {state!r} is not SUCCESS or REFUND", line=number, column="交易状态"
            )
        if not reference:
            raise StatementFormatError("a line needs WeChat's order number", line=number, column="微信订单号")
        return StatementLine(
            channel=channel,
            statement_date=statement_date,
            value_date=moment.date().isoformat(),
            channel_time=moment.isoformat(),
            channel_reference=reference,
            instruction_id=raw["商户订单号"] or None,
            type=kind,
            status=status,
            amount=amount,
            fee=amounts["手续费"],
            currency=currency,
            line_no=number,
            extra={"raw": raw, "amounts": amounts},
        )

    @staticmethod
    def _summary(rows, number, row, header, sums, count, currencies) -> None:
        names = [cell.strip() for cell in row]
        if tuple(names) != SUMMARY:
            raise StatementFormatError(f"the summary header is not {','.join(SUMMARY)}", line=number)
        number, values = next(rows, (number + 1, None))
        if values is None or len(values) != len(SUMMARY):
            raise StatementFormatError("the summary row is missing or short: truncated", line=number)
        stated = {name: _unquote(number, name, cell) for name, cell in zip(SUMMARY, values, strict=True)}
        if stated["总交易单数"] != str(count):
            raise StatementFormatError(
                f"总交易单数 says {stated['总交易单数']}, the file has {count} rows", line=number
            )
        currency = next(iter(currencies), "CNY")
        for name, column in SUMMED.items():
            if column not in header:
                continue
            try:
                total = parse_major(stated[name], currency, signed=column in SIGNED, zero_padding=True)
            except AmountFormatError as error:
                raise StatementFormatError(str(error), line=number, column=name) from None
            if total != sums[column]:
                raise StatementFormatError(
                    f"{name} says {stated[name]}, the rows add up to {sums[column]} minor units",
                    line=number,
                    column=name,
                )
        for number, rest in rows:
            if any(cell.strip() for cell in rest):
                raise StatementFormatError("text after the summary row", line=number)
