"""The published signed heads in the audit bucket (S3 Object Lock, compliance mode): one object per head,
`heads/{timestamp_ms:013d}.json`, never rewritten, and `heads/latest.json`, a new (equally locked)
version each time, so the latest head is one read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

PREFIX = "heads/"
LATEST = f"{PREFIX}latest.json"


def head_key(timestamp_ms: int) -> str:
    return f"{PREFIX}{timestamp_ms:013d}.json"


class HeadArchive:
    def __init__(self, client: Any, bucket: str):
        self._client = client
        self._bucket = bucket

    def publish(self, document: dict) -> str:
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        key = head_key(document["timestamp_ms"])
        # The bucket's default retention locks each version on arrival; the Content-MD5 that Object Lock
        # requires is added by the SDK (botocore computes it for PutObject on such buckets).
        for name in (key, LATEST):
            self._client.put_object(Bucket=self._bucket, Key=name, Body=body, ContentType="application/json")
        return key

    def latest(self) -> dict | None:
        try:
            found = self._client.get_object(Bucket=self._bucket, Key=LATEST)
        except self._client.exceptions.NoSuchKey:
            return None
        return json.loads(found["Body"].read())

    def keys(self) -> list[str]:
        keys: list[str] = []
        kwargs = {"Bucket": self._bucket, "Prefix": PREFIX}
        while True:
            page = self._client.list_objects_v2(**kwargs)
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"] != LATEST]
            if not page.get("IsTruncated"):
                return sorted(keys)  # fixed-width timestamps: key order is time order
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def documents(self) -> Iterator[tuple[str, dict]]:
        for key in self.keys():
            yield key, json.loads(self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read())
