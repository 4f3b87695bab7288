"""Payment channel adapters (implementations of `coupons.domain.payments.PaymentChannel`), and the
choice of one per tenant from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

from coupons.domain.payments import PaymentChannel


def channel_from_environment(environ: Mapping[str, str] = os.environ) -> PaymentChannel:
    """The tenant's channel, named by PAYMENT_CHANNEL. A real channel (a later issue) is one more
    branch here building its adapter; until then a tenant without a channel is a deployment error,
    so there is no default: better to fail the first payout than to pay into a simulation."""
    name = environ.get("PAYMENT_CHANNEL")
    if name == "simulated":
        from coupons.channels.simulated import SimulatedBank
        from coupons.data import clients

        # The client is made here, on first use by the handler, never at import (moto, cold start).
        return SimulatedBank(clients.dynamodb(), environ["BANK_TABLE_NAME"])
    raise ValueError(f"unknown PAYMENT_CHANNEL {name!r} (known: 'simulated')")
