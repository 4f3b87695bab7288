"""/v1/audit: one audit entry with its proof of inclusion, for the party it concerns."""

from __future__ import annotations

from answers import AuditEntry, documented

import dependencies
from coupons.domain.principals import Role
from resolver import app, caller, json_response, roles


@app.get(
    "/v1/audit/entries/<entry_id>",
    summary="An audit entry with its inclusion proof against the latest signed tree head (the parties it "
    "concerns, admin)",
    tags=["audit"],
    openapi_extensions=roles(Role.ADMIN, Role.ISSUER, Role.MERCHANT),
    operation_id="getAuditEntry",
    responses=documented((200, AuditEntry, "the entry, and its proof once a signed head covers it")),
)
def get_audit_entry(entry_id: str):
    return json_response(200, dependencies.audit_reader().entry(entry_id, caller()))
