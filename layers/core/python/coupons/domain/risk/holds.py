"""Review and holds (point 5): what a REVIEW marks, a party's hold and release, which lines a settlement
run may take, and the decision record `GET /v1/risk/decisions?subject=` reads. Pure.

- A REVIEW redemption succeeds at the till; its record carries the deciding rule (`review_fields`), and
  clearing copies `review_hold` onto its postings and onto its reversals' postings (a refund of a held
  redemption nets against it, so it waits with it).
- A party hold holds all of that party's lines, whatever their source, from `held_at` until released.
- A settlement run takes a party's due lines except held ones (`settleable`); a held line stays
  unsettled and due, so the first run after the release takes it. The held lines are returned too:
  the party's statement lists them as waiting, with why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from coupons.domain.risk.plan import Context, Decision
from coupons.domain.risk.rules import Action

PARTY_PATTERN = r"^(platform|brand:[A-Za-z0-9_-]{1,64}|merchant:[A-Za-z0-9_-]{1,64})$"


class HoldTerms(BaseModel):
    """`POST /v1/risk/holds` (admin, finance): hold one party's settlement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    party: Annotated[
        StrictStr, Field(pattern=PARTY_PATTERN, description="an account: merchant:{id}, brand:{id}")
    ]
    reason: Annotated[StrictStr, Field(min_length=1, max_length=500)]


def review_fields(decision: Decision, redemption_id: str) -> dict[str, Any]:
    """What a redemption record carries about its risk decision (nothing when no rule matched)."""
    if decision.rule_id is None:
        return {}
    fields: dict[str, Any] = {
        "risk_action": decision.action.value,
        "risk_rule_id": decision.rule_id,
        "risk_rule_version": decision.version,
        "risk_reason": decision.reason,
    }
    if decision.action is Action.REVIEW:
        fields["review_hold"] = f"review:{redemption_id}"
    return fields


def hold_id(party: str, held_at: int) -> str:
    return f"hold:{party}:{held_at}"


def hold_record(terms: HoldTerms, *, by: str, at: int, hold_id_: str | None = None) -> dict[str, Any]:
    return {
        "hold_id": hold_id_ or hold_id(terms.party, at),
        "party": terms.party,
        "reason": terms.reason,
        "held_by": by,
        "held_at": at,
        "status": "HELD",
    }


def release_record(hold: Mapping[str, Any], *, by: str, at: int) -> dict[str, Any]:
    """The hold, released. Releasing twice keeps the first release (the store conditions on HELD)."""
    if hold.get("status") == "RELEASED":
        return dict(hold)
    return {**hold, "status": "RELEASED", "released_by": by, "released_at": at}


def review_release_record(redemption_id: str, *, by: str, at: int) -> dict[str, Any]:
    return {"review_hold": f"review:{redemption_id}", "released_by": by, "released_at": at}


def party_held(holds: Iterable[Mapping[str, Any]], party: str, at: int) -> Mapping[str, Any] | None:
    """The hold on `party` in force at `at` (held at or before it, not released by then), if any."""
    for hold in holds:
        if hold["party"] != party or hold["held_at"] > at:
            continue
        released = hold.get("released_at")
        if released is None or released > at:
            return hold
    return None


@dataclass(frozen=True)
class Taken:
    lines: list[dict[str, Any]]  # the run settles these
    held: list[dict[str, Any]]  # these wait: each with `held_because`


def settleable(
    party: str,
    lines: Iterable[Mapping[str, Any]],
    *,
    holds: Iterable[Mapping[str, Any]],
    released_reviews: set[str],
    at: int,
) -> Taken:
    """Which of `party`'s due lines a run starting at `at` takes. A party hold holds them all; a line
    with a `review_hold` not in `released_reviews` waits on its own."""
    hold = party_held(list(holds), party, at)
    taken: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for line in lines:
        review = line.get("review_hold")
        if hold is not None:
            held.append({**line, "held_because": {"hold_id": hold["hold_id"], "reason": hold["reason"]}})
        elif review is not None and review not in released_reviews:
            held.append({**line, "held_because": {"review_hold": review}})
        else:
            taken.append(dict(line))
    return Taken(taken, held)


def claimable(
    lines: Iterable[Mapping[str, Any]],
    *,
    holds: Iterable[Mapping[str, Any]],
    released_reviews: set[str],
    at: int,
) -> Taken:
    """`settleable` over a page of many parties' lines (a claim shard's page: each line's party is its
    `account`), in the page's order."""
    holds = list(holds)
    taken: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for line in lines:
        one = settleable(line["account"], [line], holds=holds, released_reviews=released_reviews, at=at)
        taken += one.lines
        held += one.held
    return Taken(taken, held)


def reviews_in(lines: Iterable[Mapping[str, Any]]) -> set[str]:
    """The review holds a page's lines carry: only these need their release looked up."""
    return {line["review_hold"] for line in lines if line.get("review_hold")}


def held_section(lines: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What waits, per currency (a party's statement's "held" section): the amount and the lines."""
    section: dict[str, dict[str, Any]] = {}
    for line in sorted(lines, key=lambda x: (x["currency"], x.get("due_date", ""), x["journal_id"])):
        entry = section.setdefault(line["currency"], {"currency": line["currency"], "amount": 0, "lines": []})
        entry["amount"] += line["amount"]
        entry["lines"].append(
            {k: line[k] for k in (*_HELD_COLUMNS, "held_because") if line.get(k) is not None}
        )
    return list(section.values())


_HELD_COLUMNS = (
    "journal_id", "source_id", "source_kind", "amount", "currency", "business_date", "due_date",
    "redemption_id", "reversal_id", "review_hold",
)  # fmt: skip


def hold_decision(hold: Mapping[str, Any], *, action: str, at: int, decision_id: str) -> dict[str, Any]:
    """A hold or release as a decision record, read under its party (`?subject=merchant:m-1`)."""
    return {
        "decision_id": decision_id,
        "event": "HOLD",
        "at": at,
        "action": action,  # HOLD / RELEASE
        "reason": hold["reason"],
        "hold_id": hold["hold_id"],
        "party": hold["party"],
        "by": hold["released_by"] if action == "RELEASE" else hold["held_by"],
        "source_id": hold["hold_id"],
        "subjects": [hold["party"]],
    }


def review_release_decision(
    redemption: Mapping[str, Any], *, by: str, at: int, decision_id: str, reason: str
) -> dict[str, Any]:
    """A REVIEW redemption's release, read under the redemption and its merchant and coupon."""
    subjects = [f"redemption:{redemption['redemption_id']}"]
    subjects += [f"merchant:{redemption['merchant_id']}"] if redemption.get("merchant_id") else []
    subjects += [f"coupon:{redemption['code']}"] if redemption.get("code") else []
    return {
        "decision_id": decision_id,
        "event": "REVIEW",
        "at": at,
        "action": "RELEASE",
        "reason": reason,
        "review_hold": redemption["review_hold"],
        "by": by,
        "source_id": redemption["redemption_id"],
        "subjects": subjects,
    }


def subjects(ctx: Context) -> list[str]:
    """What a decision can be looked up by (`?subject=device:d-1`): each subject the request gave."""
    pairs = [
        ("user", ctx.user_id),
        ("device", ctx.device_id),
        ("ip", ctx.client_ip),
        ("caller_ip", ctx.caller_ip),
        ("merchant", ctx.merchant_id),
        ("coupon", ctx.code),
    ]
    return [f"{name}:{value}" for name, value in pairs if value]


def decision_record(
    ctx: Context, decision: Decision, *, decision_id: str, source_id: str | None
) -> dict[str, Any]:
    """One recorded decision: every DENY and REVIEW (and ALLOW by a rule); a redemption that no rule
    matched is not recorded (that is every ordinary redemption: its record says enough)."""
    if decision.rule_id is None:
        raise ValueError("only a rule's decision is recorded")
    return {
        "decision_id": decision_id,
        "event": ctx.event.value,
        "at": ctx.at,
        "action": decision.action.value,
        "rule_id": decision.rule_id,
        "rule_version": decision.version,
        "reason": decision.reason,
        "source_id": source_id,  # the redemption or coupon it concerns; None when denied (none made)
        "subjects": subjects(ctx),
        "amount": ctx.amount,
        "currency": ctx.currency,
    }
