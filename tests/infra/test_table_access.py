"""Least privilege by item: each function writes the main table only on its own partitions (the
`dynamodb:LeadingKeys` condition built from coupons.data.access), on both tenants' templates."""

from __future__ import annotations

import pytest

from coupons.data import access
from coupons.data.schema import MAIN
from infra.constructs.settlement import HEARTBEAT, STEPS
from tests.infra.conftest import resources
from tests.infra.test_functions import _listed, _role_of, _statements

pytestmark = pytest.mark.xdist_group("infra")

WRITE_ACTIONS = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
}
# Each settlement partition for both kinds of run: daily `stl_{X}`, intraday `stl_{X}_t0`.
RUN = ["SETTLEMENT#stl_????????", "SETTLEMENT#stl_????????_t0"]
PARTIES = ["SETTLEMENT#stl_????????#PARTIES#*", "SETTLEMENT#stl_????????_t0#PARTIES#*"]
LINES = ["SETTLEMENT#stl_????????#LINES#*", "SETTLEMENT#stl_????????_t0#LINES#*"]
HELD = ["SETTLEMENT#stl_????????#HELD#*", "SETTLEMENT#stl_????????_t0#HELD#*"]
# What each function may write, spelled out: a change to coupons.data.access shows here.
EXPECTED = {
    "api": [
        "CAMPAIGN#*", "CAMPAIGNTAG#*", "QUOTA#*#*", "COUPON#*", "HISTORY#*", "HOLDING#*#*", "REDEMPTION#*", "QRTOKEN#*",
        "IDEMPOTENCY#*#*", "APIKEY#*", "FUNDINGRULE#*", "COMMISSION#SCHEDULE", *RUN,
        # risk control (issue #18): list entries, rule set versions, velocity and guessing counters, decisions
        "RISKLIST#*", "RISKRULES", "RISKCTR#*", "RISKGUESS#*", "RISKDECISION#*",
        "RISKHOLDS", "RISKREVIEW#*",  # settlement holds and REVIEW releases (issue #18 point 5)
        "RECONEXCEPTION#*",  # reconciliation (issue #16): finance proposes and resolves exceptions
        "ORDER#*#*",  # orders against coupons (issue #16 point 8): POST /v1/orders/events
        "MERCHANT#*",  # a merchant's settlement mode (issue #15 point 1): PUT /v1/merchants/{id}/settlement
    ],
    # IPENDING: the instant flush threshold's totals and marks, in the journal's transaction
    "clearing": ["JOURNAL#*", "ENTRIES#*", "BALANCE#*#*", "REDEMPTION#*", "IPENDING#*#*#*"],
    "settlement.open": [*RUN],
    "settlement.await_clearing": None,
    # Issue #18 point 5: what it leaves waiting on a risk hold, for the run's statements.
    "settlement.claim": ["ENTRIES#*", "CARRY#*", *LINES, *PARTIES, *RUN, *HELD],
    "settlement.plan": [*RUN],
    # Issue #14: a transfer's journal, its postings and balances, in the transaction recording it SENT.
    "settlement.pay": [*PARTIES, "CARRY#*", "JOURNAL#*", "ENTRIES#*", "BALANCE#*#*"],
    "settlement.write_statements": [*PARTIES],
    "settlement.mark_settled": ["ENTRIES#*", "CARRY#*", *PARTIES],
    "settlement.close": [*RUN],
    "settlement.record_failure": [*RUN],
    "settlement.heartbeat": None,
    "audit": ["AUDITLOG#*", "AUDITREF#*"],
    "audit.sign": None,
    # The anomaly detector (issue #18 point 7): baselines, markers, a flag's hold and records.
    "anomaly": ["RISKBASE#*", "RISKSEEN#*", "RISKHOLDS", "RISKDECISION#*"],
    # Issue #15: the redemption holds' expiry sweep releases a hold, its coupon, with a history event.
    "holds.expiry": ["REDEMPTION#*", "COUPON#*", "HISTORY#*"],
    # The daily order file: its events, the reversals they make, their idempotency keys, ORDER_* exceptions.
    "orders": ["ORDER#*#*", "REDEMPTION#*", "COUPON#*", "HISTORY#*", "IDEMPOTENCY#*#*", "RECONEXCEPTION#*"],
    # Issue #15 point 1: instant payouts, each a one-party run of its own (never a scheduled run's items),
    # the postings it claims, settles or gives back, its transfer journal, the day's instant statement.
    "instant": ["SETTLEMENT#ipo_*", "SETTLEMENT#ipo_*#PARTIES#*", "SETTLEMENT#ipo_*#LINES#*", "ENTRIES#*",
                "JOURNAL#*", "BALANCE#*#*", "INSTANT#*#*"],
    "reconciliation": ["RECONRUN#*", "RECONEXCEPTION#*", "RECONCOMPENSATION#*", "RECONTRANSFER#*", "JOURNAL#*",
                       "ENTRIES#*", "BALANCE#*#*"],
}  # fmt: skip
TABLE_ARN = {"Fn::GetAtt": [MAIN.logical_id, "Arn"]}


def _writers(template: dict) -> dict[str, dict]:
    """Each function of the template by its writer's name in coupons.data.access."""
    prefixes = {"ApiHandler": "api", "ClearingHandler": "clearing", "AuditHandler": "audit", "AuditSigner": "audit.sign", "AnomalyHandler": "anomaly", "HoldsExpiry": "holds.expiry", "InstantHandler": "instant",
                "ReconciliationSteps": "reconciliation", "ReconciliationStarter": None,
                "ReconciliationOrderFiles": "orders"}  # fmt: skip  (the starter touches no table)
    for step in [*STEPS, HEARTBEAT]:
        prefixes["SettlementSteps" + "".join(p.capitalize() for p in step.folder.split("_"))] = step.writer
    found = {}
    for logical_id, function in resources(template, "AWS::Lambda::Function").items():
        (writer,) = [w for prefix, w in prefixes.items() if logical_id.startswith(prefix + "Function")]
        if writer is not None:
            found[writer] = function
    return found


def test_every_function_of_the_mapping_is_in_the_template_and_the_mapping_is_as_expected(template: dict):
    assert set(_writers(template)) == set(access.WRITERS) == set(EXPECTED)
    for writer, patterns in EXPECTED.items():
        assert access.patterns(writer) == (patterns or [])


@pytest.mark.parametrize("writer", sorted(EXPECTED))
def test_each_function_writes_the_main_table_only_on_its_own_partitions(template: dict, writer: str):
    statements = _statements(template, _role_of(_writers(template)[writer]))
    on_table = [s for s in statements if TABLE_ARN in _listed(s["Resource"])]
    writes = [s for s in on_table if WRITE_ACTIONS & set(_listed(s["Action"]))]
    if EXPECTED[writer] is None:
        assert writes == []
        return
    (statement,) = writes
    assert set(_listed(statement["Action"])) <= WRITE_ACTIONS  # nothing else rides on the condition
    assert _listed(statement["Resource"]) == [TABLE_ARN]
    assert statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": EXPECTED[writer]},
        "Null": {"dynamodb:LeadingKeys": "false"},
    }


def test_the_api_writes_no_ledger_settlement_party_line_or_carry_item(template: dict):
    written = access.patterns("api")
    for pk in ("JOURNAL#jnl_1", "ENTRIES#platform#3", "BALANCE#platform#3", "CARRY#merchant:m1",
               "SETTLEMENT#stl_20260309#PARTIES#1", "SETTLEMENT#stl_20260309#LINES#platform",
               "SETTLEMENT#stl_20260309_t0#PARTIES#1", "SETTLEMENT#stl_20260309_t0#LINES#platform"):  # fmt: skip
        assert not access.allows("api", pk), pk
    assert access.allows("api", "SETTLEMENT#stl_20260309")  # the run an admin starts or resumes
    assert access.allows("api", "SETTLEMENT#stl_20260309_t0")  # and the intraday one
    assert written == EXPECTED["api"]
