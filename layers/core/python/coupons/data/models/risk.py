"""Risk items (coupons.data.risk; key strings from coupons.domain.risk.keys, written once there):

RISKLIST#{list}#{value} / ENTRY         a list entry (reason, optional expiry = the table's TTL)
    gsi1: RISKLIST#{list} / {value}     the entries of one list, for reading a list back
RISKRULES / V#{version:08}              a rule set version (the whole ordered set, as JSON)
RISKCTR#{subject}#{value} / W{s}#{b}    a windowed counter: n, amt_{CUR}, d_{of} (a string set)
RISKGUESS#{scope}#{value} / W{s}#{b}    a code-guessing miss counter: n
RISKDECISION#{subject} / {at:010}#{id}  a rule's decision, one copy per subject it concerns (the reads
                                        are by subject: ?subject=device:d-1), newest last
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
    event = Text()
    at = Integer()
    action = Text()
    rule_id = Text()
    rule_version = Integer()
    reason = Text()
    source_id = Text(null=True)
    subjects = List(of=Text)
    amount = Integer()
    currency = Text()
