"""Settlement documents in the tenant's statements bucket (KMS-encrypted by the bucket's default).

settlement-runs/{run_id}/manifest.json             the parties in batches: the Distributed Map's items
settlement-runs/{run_id}/statements/{party}.json   one party's statement, and the same as .csv
"""

from __future__ import annotations

import json
from typing import Any

FORMATS = {"json": "application/json", "csv": "text/csv; charset=utf-8"}


def manifest_key(run_id: str) -> str:
    return f"settlement-runs/{run_id}/manifest.json"


def statement_key(run_id: str, party: str, fmt: str) -> str:
    return f"settlement-runs/{run_id}/statements/{party}.{fmt}"


class StatementStore:
    def __init__(self, client, bucket: str):
        self._client = client
        self.bucket = bucket

    def put_manifest(self, run_id: str, items: list[dict[str, Any]]) -> str:
        key = manifest_key(run_id)
        self._put(key, json.dumps(items, separators=(",", ":")), FORMATS["json"])
        return key

    def put_statement(
        self, run_id: str, party: str, document: dict[str, Any], csv_text: str
    ) -> dict[str, str]:
        """Overwrites: a retry writes the same bytes (the statement is a function of the claimed lines)."""
        keys = {fmt: statement_key(run_id, party, fmt) for fmt in FORMATS}
        self._put(
            keys["json"], json.dumps(document, separators=(",", ":"), ensure_ascii=False), FORMATS["json"]
        )
        self._put(keys["csv"], csv_text, FORMATS["csv"])
        return keys

    def statement(self, run_id: str, party: str, fmt: str) -> str | None:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=statement_key(run_id, party, fmt))
        except self._client.exceptions.NoSuchKey:
            return None
        return answer["Body"].read().decode()

    def _put(self, key: str, body: str, content_type: str) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=body.encode(), ContentType=content_type)
