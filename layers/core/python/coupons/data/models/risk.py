"""Risk items (coupons.data.risk; key strings from coupons.domain.risk.keys, written once there):

RISKLIST#{list}#{value} / ENTRY         a list entry (reason, optional expiry = the table's TTL)
    gsi1: RISKLIST#{list} / {value}     the entries of one list, for reading a list back
RISKRULES / V#{version:08}              a rule set version (the whole ordered set, as JSON)
RISKCTR#{subject}#{value} / W{s}#{b}    a windowed counter: n, amt_{CUR}, d_{of} (a string set)
RISKGUESS#{scope}#{value} / W{s}#{b}    a code-guessing miss counter: n
RISKDECISION#{subject} / {at:010}#{id}  a rule's decision, a hold, a release, an anomaly flag: one copy
                                        per subject it concerns (read by subject: ?subject=device:d-1)
RISKHOLDS / {hold_id}                   a party hold (HELD, then RELEASED): one partition, read whole
                                        once per claim shard (holds are few: admins' and flags')
RISKREVIEW#{redemption_id} / RELEASE    a REVIEW redemption's release (absent: still held)
RISKBASE#{merchant|campaign}#{id} / STATE   the detector's baseline of one key (coupons.domain.risk.anomaly)
RISKSEEN#{stream event id} / SEEN       a stream record the detector has counted (TTL 2 days)
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeSetAttribute

from coupons.data.models.base import Integer, List, MainModel, Text

RULES_PK = "RISKRULES"


def entry_pk(pattern: str) -> str:
    return f"RISKLIST#{pattern}"  # keys.entry_key's partition, as an IAM pattern


def counter_pk(pattern: str) -> str:
    return f"RISKCTR#{pattern}"


def guess_pk(pattern: str) -> str:
    return f"RISKGUESS#{pattern}"


def decision_pk(subject: str) -> str:
    return f"RISKDECISION#{subject}"


def decision_sk(at: int, decision_id: str) -> str:
    return f"{at:010d}#{decision_id}"


HOLDS_PK = "RISKHOLDS"
RELEASE_SK = "RELEASE"


def review_pk(redemption_id: str) -> str:
    return f"RISKREVIEW#{redemption_id}"


def baseline_pk(key: str) -> str:
    return f"RISKBASE#{key}"


def seen_pk(event_id: str) -> str:
    return f"RISKSEEN#{event_id}"


def rules_sk(version: int) -> str:
    return f"V#{version:08d}"


def list_index_pk(list_name: str) -> str:
    return f"RISKLIST#{list_name}"


class ListEntry(MainModel):
    """One value on one list. `expires_at` (the table's TTL) ends it: the redemption's ConditionCheck
    compares it with now (TTL deletes days late), absent = never expires."""

    list_name = Text()
    value = Text()
    reason = Text()
    created_at = Text()
    created_by = Text()


class RuleSetVersion(MainModel):
    version = Integer()
    rules = Text()  # the ordered set as JSON: read whole, validated again by RuleSet on the way out
    created_at = Text()
    created_by = Text()


class GuessCounter(MainModel):
    """Misses (codes that pass the check character but do not exist) of one caller in a window."""

    n = Integer(null=True)


class Counter(MainModel):
    """A windowed counter. `n` is declared; an amount's `amt_{CUR}` and a distinct set's `d_{of}` are
    named by the rule that counts them, so the store speaks of them through `amount` / `distinct`."""

    n = Integer(null=True)


def amount(name: str) -> NumberAttribute:
    """An `amt_{CUR}` attribute of a counter, for expressions (its name comes from the rule)."""
    attribute = Integer(null=True, attr_name=name)
    return attribute


def distinct(name: str) -> UnicodeSetAttribute:
    """A `d_{of}` string set of a counter: the digests of the values seen in its window."""
    return UnicodeSetAttribute(null=True, attr_name=name)


class DecisionRecord(MainModel):
    """A rule's decision (coupons.domain.risk.holds.decision_record), as read under one of its subjects."""

    decision_id = Text()
    event = Text()  # REDEMPTION / ISSUANCE (a rule's), HOLD (a hold or its release), REVIEW, ANOMALY
    at = Integer()
    action = Text()  # DENY / REVIEW / ALLOW; HOLD / RELEASE; FLAG
    rule_id = Text(null=True)
    rule_version = Integer(null=True)
    reason = Text()
    source_id = Text(null=True)
    subjects = List(of=Text)
    amount = Integer(null=True)
    currency = Text(null=True)
    # A hold's or release's (coupons.domain.risk.holds.hold_decision, review_release_decision).
    hold_id = Text(null=True)
    party = Text(null=True)
    by = Text(null=True)
    review_hold = Text(null=True)
    # An anomaly flag's (coupons.domain.risk.anomaly): which series, its z-score's parts (as text:
    # statistics, never money, and never a float stored as a number).
    series = Text(null=True)
    statistic = Text(null=True)


class Hold(MainModel):
    """A party's settlement hold (coupons.domain.risk.holds.hold_record)."""

    hold_id = Text()
    party = Text()
    reason = Text()
    held_by = Text()
    held_at = Integer()
    status = Text()  # HELD / RELEASED
    released_by = Text(null=True)
    released_at = Integer(null=True)


class ReviewRelease(MainModel):
    """A REVIEW redemption released: its postings (review_hold) are settled by the next run."""

    review_hold = Text()
    redemption_id = Text()
    released_by = Text()
    released_at = Integer()
    reason = Text()


class Baseline(MainModel):
    """The detector's state of one key (merchant:{id} / campaign:{id}): the open interval and the
    EWMA series, as JSON (statistics in floats: never money, never a number attribute), and a version
    each update conditions on (two batches of different shards update one key)."""

    key = Text()
    state = Text()
    version = Integer()


class Seen(MainModel):
    """A stream record the detector counted: its put (attribute_not_exists) and the baselines' updates
    are one transaction, so a redelivered record is counted never again."""

    source_id = Text()
