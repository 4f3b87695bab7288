"""Who is calling: the principal an API key stands for, and what each kind may do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from coupons.domain.errors import Forbidden, InvalidField

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_ID = re.compile(ID_PATTERN)


class Role(StrEnum):
    ADMIN = "admin"
    ISSUER = "issuer"  # a brand: owns campaigns and their coupons
    MERCHANT = "merchant"  # redeems and reverses for itself only
    FINANCE = "finance"  # reads everything about money, resolves reconciliation exceptions; no campaigns or keys


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    party_id: str | None = None  # brand id for an issuer, merchant id for a merchant

    def __str__(self) -> str:
        return self.role.value if self.party_id is None else f"{self.role.value}:{self.party_id}"

    @property
    def brand_id(self) -> str | None:
        return self.party_id if self.role is Role.ISSUER else None

    @property
    def merchant_id(self) -> str | None:
        return self.party_id if self.role is Role.MERCHANT else None

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"{self} may not do this; allowed: {allowed}")


def parse_principal(text: str, *, field: str = "principal") -> Principal:
    """`admin`, `finance`, `issuer:{brand_id}` or `merchant:{merchant_id}`. A finance principal may take
    a name (`finance:alice`): four-eyes tells the proposer from the approver by principal and key."""
    role_text, _, party = text.partition(":")
    try:
        role = Role(role_text)
    except ValueError:
        raise InvalidField(
            "principal must be admin, finance, issuer:{brand_id} or merchant:{merchant_id}", field=field
        ) from None
    if role is Role.ADMIN:
        if party:
            raise InvalidField("admin takes no id", field=field)
        return Principal(role)
    if role is Role.FINANCE and not party:
        return Principal(role)
    if not _ID.match(party):
        raise InvalidField(f"{role.value} needs an id matching {ID_PATTERN}", field=field)
    return Principal(role, party)
