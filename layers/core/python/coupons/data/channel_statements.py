"""Channel statement files in the tenant's statements bucket (KMS-encrypted by the bucket's default,
versioned: a re-upload is a new version, and reconciliation runs once per version).

channel-statements/{channel}/{date}.csv.gz     the channel's daily file, as the channel publishes it
reconciliation-runs/{run_id}/report.json       a reconciliation run's report
reconciliation-runs/{run_id}/buckets/{b}.jsonl.gz        a file not in id order: bucket b's chunk
reconciliation-runs/{run_id}/buckets/{b}.result.json.gz  what matching bucket b left to settle
"""

from __future__ import annotations

import json
import re
from typing import Any, BinaryIO

PREFIX = "channel-statements/"
_KEY = re.compile(r"^channel-statements/(?P<channel>[a-z0-9_-]+)/(?P<date>\d{4}-\d{2}-\d{2})\.csv(\.gz)?$")


def statement_key(channel: str, statement_date: str) -> str:
    return f"{PREFIX}{channel}/{statement_date}.csv.gz"


def parse_key(key: str) -> tuple[str, str]:
    """(channel, date) of a statement key; ValueError for any other object (the rule matches the
    prefix only: a stray object must fail its run saying so, not be read as a statement)."""
    found = _KEY.match(key)
    if not found:
        raise ValueError(f"{key!r} is not channel-statements/{{channel}}/{{YYYY-MM-DD}}.csv.gz")
    return found["channel"], found["date"]


def report_key(run_id: str) -> str:
    return f"reconciliation-runs/{run_id}/report.json"


def bucket_key(run_id: str, bucket: int, what: str = "jsonl") -> str:
    """Named by the run and the bucket: a retried step or a replay writes the same objects."""
    return f"reconciliation-runs/{run_id}/buckets/{bucket:05d}.{what}.gz"


class ChannelStatementStore:
    def __init__(self, client, bucket: str):
        self._client = client
        self.bucket = bucket

    def put(self, channel: str, statement_date: str, body: bytes) -> dict[str, str]:
        """Writes the day's file; returns its key and version id (the run's identity)."""
        key = statement_key(channel, statement_date)
        answer = self._client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="text/csv", ContentEncoding="gzip"
        )
        return {"bucket": self.bucket, "key": key, "version_id": answer.get("VersionId") or ""}

    def open(self, key: str, version_id: str | None) -> BinaryIO:
        """The file's bytes as a stream (botocore's StreamingBody): read as it is parsed, never whole."""
        extra = {"VersionId": version_id} if version_id else {}
        return self._client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]

    def put_report(self, run_id: str, report: dict[str, Any]) -> str:
        key = report_key(run_id)
        self._client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(report, separators=(",", ":"), sort_keys=True).encode(),
            ContentType="application/json",
        )
        return key

    def put_bucket(self, run_id: str, bucket: int, body: BinaryIO | bytes, what: str = "jsonl") -> str:
        """A bucket's gzipped chunk (a file on local disk: botocore streams a seekable body, never read
        whole) or its result. One PUT (≤ 5 GB): a bucket is far smaller."""
        key = bucket_key(run_id, bucket, what)
        self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentEncoding="gzip")
        return key

    def open_bucket(self, run_id: str, bucket: int, what: str = "jsonl") -> BinaryIO:
        return self._client.get_object(Bucket=self.bucket, Key=bucket_key(run_id, bucket, what))["Body"]
