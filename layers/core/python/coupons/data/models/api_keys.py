"""API keys: the key's hash and the principal it stands for, never the key itself (coupons.data.api_keys).

APIKEY#{key_id} / APIKEY    gsi1: APIKEYS / {created_at}#{key_id}
"""

from __future__ import annotations

from coupons.data.models.base import MainModel, Text


def api_key_pk(key_id: str) -> str:
    return f"APIKEY#{key_id}"


API_KEY_SK = "APIKEY"


class ApiKey(MainModel):
    key_id = Text()
    principal = Text()
    description = Text(null=True)
    secret_hash = Text()
    created_at = Text()
    created_by = Text()
    revoked_at = Text(null=True)
