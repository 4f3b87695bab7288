"""The trace's own reads: postings by key, in one BatchGetItem (coupons.services.trace)."""

from __future__ import annotations

from typing import Any

from coupons.data.models.trace import PostingView


class TraceReads:
    def __init__(self, client: Any, table_name: str):
        self.Posting = PostingView.bound(client, table_name)

    def postings(self, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        found = []
        for i in range(0, len(keys), 100):
            for posting in self.Posting.batch_get(keys[i : i + 100], consistent_read=True):
                found.append({"pk": posting.pk, "sk": posting.sk, **posting.record()})
        return sorted(found, key=lambda p: (p["pk"], p["sk"]))
