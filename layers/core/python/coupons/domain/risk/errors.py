"""The risk refusal: 403 risk_denied naming the rule that decided (its id, version and reason)."""

from __future__ import annotations

from coupons.domain.errors import Forbidden
from coupons.domain.risk.plan import Decision


class RiskDenied(Forbidden):
    code = "risk_denied"
    title = "Refused by a risk rule"

    def __init__(self, decision: Decision):
        super().__init__(decision.reason, **decision.problem_extra())
        self.decision = decision
