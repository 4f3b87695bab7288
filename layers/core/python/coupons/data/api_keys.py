"""API key records: the key's hash and the principal it stands for; never the key itself."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError

from coupons.data.idempotency import COMPLETION, raise_if_lock_lost
from coupons.data.models.api_keys import API_KEY_SK, ApiKey, api_key_pk
from coupons.data.models.base import Transaction, Write, failed_condition


class ApiKeyStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._key = ApiKey.bound(client, table_name)

    def put_new(self, record: dict[str, Any], *, completion: Write | None = None) -> None:
        """The key's record; with `completion` (the Idempotency-Key's COMPLETED record) in one transaction."""
        model = self._key
        item = model.from_record(
            record,
            pk=api_key_pk(record["key_id"]),
            sk=API_KEY_SK,
            gsi1pk="APIKEYS",
            gsi1sk=f"{record['created_at']}#{record['key_id']}",
        )
        # 80 random bits make a clash unlikely; the condition makes it impossible to overwrite a key.
        new = model.pk.does_not_exist()
        if completion is None:
            item.save(condition=new)
            return
        tx = Transaction(self._client)
        tx.save(item, new)
        tx.add(completion, tag=COMPLETION)
        try:
            tx.commit()
        except TransactWriteError as error:
            raise_if_lock_lost(error, tx)
            raise

    def get(self, key_id: str) -> dict[str, Any] | None:
        try:
            return self._key.get(api_key_pk(key_id), API_KEY_SK, consistent_read=True).record()
        except self._key.DoesNotExist:
            return None

    def revoke(self, key_id: str, at: str) -> bool:
        """Marks the key revoked (kept for audit); False when there is no such key. Revoking twice keeps
        the first time."""
        model = self._key
        try:
            model(api_key_pk(key_id), API_KEY_SK).update(
                [model.revoked_at.set(model.revoked_at | at)],  # if_not_exists: the first time stays
                # Only a key that exists: an unknown id is a 404, never a new record.
                condition=model.pk.exists(),
            )
        except Exception as error:
            if failed_condition(error):
                return False
            raise
        return True
