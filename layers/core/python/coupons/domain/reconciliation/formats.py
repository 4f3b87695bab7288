"""Statement formats: the one interface a channel's file parser implements, the registry the run
picks a parser from by name, and the byte stream -> text lines step they share (gzip or not).

A new channel format is a module with a class implementing `StatementFormat`, registered here;
the matcher only ever sees `StatementLine`s, so it does not change."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, Protocol, runtime_checkable

from coupons.domain.reconciliation.lines import StatementFormatError, StatementLine

GZIP_MAGIC = b"\x1f\x8b"


@runtime_checkable
class StatementFormat(Protocol):
    name: str  # the registry key, also what a tenant file names

    def parse(self, text: Iterable[str], *, channel: str, statement_date: str) -> Iterator[StatementLine]:
        """Yield the file's lines one by one, reading `text` (an iterable of text lines) once and
        keeping only running totals: memory does not grow with the file. The summary is checked when
        it is reached; a file that does not add up raises StatementFormatError there, so a caller
        commits nothing until the iterator is exhausted. `channel` and `statement_date` are what
        the file's name says; a file whose own header says otherwise is refused."""
        ...


_REGISTRY: dict[str, Callable[[], StatementFormat]] = {}
_BUILTIN: list[bool] = []  # non-empty once the built-in formats are registered


def register(name: str, factory: Callable[[], StatementFormat]) -> None:
    if name in _REGISTRY:
        raise ValueError(f"statement format {name!r} is already registered")
    _REGISTRY[name] = factory


def formats() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def parser_for(name: str) -> StatementFormat:
    _load_builtin()
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ValueError(
            f"unknown statement format {name!r} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None


def text_lines(raw: BinaryIO, *, encoding: str = "utf-8-sig") -> io.TextIOWrapper:
    """The file's text, decompressed on the fly when it starts with the gzip magic bytes (the key's
    `.gz` is not trusted either way). `utf-8-sig` drops a byte-order mark (WeChat's files may start
    with one). Read lazily: a 1 GB file is never in memory."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(_Readable(raw))
    stream: BinaryIO = (
        gzip.GzipFile(fileobj=buffered, mode="rb") if buffered.peek(2)[:2] == GZIP_MAGIC else buffered
    )  # type: ignore[assignment]
    return io.TextIOWrapper(stream, encoding=encoding, newline="")


def read_statement(
    raw: BinaryIO, format_name: str, *, channel: str, statement_date: str
) -> Iterator[StatementLine]:
    try:
        yield from parser_for(format_name).parse(
            text_lines(raw), channel=channel, statement_date=statement_date
        )
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as error:
        raise StatementFormatError(f"the file cannot be read: {error}") from None


class _Readable(io.RawIOBase):
    """Any object with read(n) (a botocore StreamingBody) as a raw stream BufferedReader accepts."""

    def __init__(self, source) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._source.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _load_builtin() -> None:
    # Imported on first use, not at import: the format modules import this one.
    if not _BUILTIN:
        from coupons.domain.reconciliation import channel_bill, wechat

        _BUILTIN.append(True)
        register(channel_bill.NAME, channel_bill.ChannelBill)
        register(wechat.NAME, wechat.WeChatTradeBill)
