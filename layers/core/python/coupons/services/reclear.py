"""Re-clear: post, through the clearing code itself, every redemption and reversal still in the
clearing-pending index. The remedy of the clearing dead-letter queue, whose messages point at stream
records that age out of the stream within 24 h, long before the queue's 14 days.

Idempotent like clearing: a journal already posted comes back "duplicate" and writes nothing, so a
re-clear may run at any time, twice, or while the stream consumer runs. A redemption is cleared before
its reversals (a reversal of an uncleared redemption fails, as on the stream). The pending index is
eventually consistent: what was cleared a moment ago may still be listed (then "duplicate").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coupons.services.clearing import Clearer

# Every business date: the index's sort keys start with one.
ALL_DATES = "9999-12-31"
# What one pass reads of the index; passes repeat while they post something.
PASS_LIMIT = 5_000
MAX_PASSES = 5


@dataclass
class Outcome:
    posted: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # source id → error

    def summary(self) -> dict[str, Any]:
        return {"posted": len(self.posted), "duplicate": len(self.duplicate), "failed": self.failed}


def _source_id(record: dict[str, Any]) -> str:
    return record.get("reversal_id") or record["redemption_id"]


class Reclearer:
    def __init__(
        self,
        pending: Callable[[str, int], list[dict[str, Any]]],
        images: Callable[[str], list[dict[str, Any]]],
        clearer: Clearer,
    ):
        """`pending(up_to, limit)`: RedemptionStore.pending_clearing; `images(redemption_id)`: the stored
        redemption and its reversals with their keys (data.redemptions.source_images)."""
        self._pending = pending
        self._images = images
        self._clearer = clearer

    def run(self, up_to_business_date: str = ALL_DATES) -> Outcome:
        outcome = Outcome()
        for _ in range(MAX_PASSES):
            listed = self._pending(up_to_business_date, PASS_LIMIT)
            wanted = {_source_id(p) for p in listed} - set(outcome.posted) - set(outcome.duplicate)
            if not wanted:
                break
            before = len(outcome.posted)
            outcome.failed = {}
            for redemption_id in sorted({p["redemption_id"] for p in listed}):
                for image in self._images(redemption_id):  # the redemption first, then its reversals
                    source = _source_id(image)
                    if source not in wanted:
                        continue
                    try:
                        result = self._clearer.clear(image)
                    except Exception as error:  # reported, and tried again next pass
                        outcome.failed[source] = f"{type(error).__name__}: {error}"
                        continue
                    (outcome.posted if result == "posted" else outcome.duplicate).append(source)
            if len(outcome.posted) == before and len(listed) < PASS_LIMIT:
                break  # nothing new posted: what is left fails on its own
        return outcome
