"""Re-clear a tenant: post every redemption and reversal still pending clearing, through the clearing
code, idempotently (docs/runbook.md, "Re-clear"; the clearing dead-letter queue's remedy).

    python -m infra.reclear --tenant demo [--region eu-west-1]    # a deployed tenant (stack outputs)
    python -m infra.reclear --endpoints-file .local/endpoints.json # the local stack (make reclear)

Uses the shell's AWS credentials; prints a JSON summary (posted, duplicate, failed with the error)
and exits 1 if anything still fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from infra.admin_key import table_of
from infra.tenants import load_tenant


def reclear(dynamodb_client, table_name: str, up_to: str | None = None, *, calendar=None) -> dict:
    """`calendar`: the tenant's holiday calendar, as its clearing function has it (due dates in
    business days); None: calendar days."""
    from coupons.data.ledger import LedgerStore
    from coupons.data.redemptions import RedemptionStore, source_images
    from coupons.services.clearing import Clearer
    from coupons.services.reclear import ALL_DATES, Reclearer

    store = RedemptionStore(dynamodb_client, table_name)
    reclearer = Reclearer(
        lambda day, limit: store.pending_clearing(day, limit=limit),
        lambda redemption_id: source_images(dynamodb_client, table_name, redemption_id),
        Clearer(LedgerStore(dynamodb_client, table_name), calendar=calendar),
    )
    return reclearer.run(up_to or ALL_DATES).summary()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--tenant", help="a deployed tenant: its stack's MainTableName output")
    target.add_argument("--endpoints-file", type=Path, help="the local stack's .local/endpoints.json")
    parser.add_argument("--region")
    parser.add_argument("--up-to", help="only business dates up to this one (YYYY-MM-DD); default all")
    args = parser.parse_args(argv)

    import boto3

    if args.endpoints_file:
        if not args.endpoints_file.is_file():
            print(
                f"{args.endpoints_file} not found: start the local stack first (make local)", file=sys.stderr
            )
            return 2
        from infra.local.moto_server import aws_env

        endpoints = json.loads(args.endpoints_file.read_text())
        os.environ.update(aws_env(endpoints["moto_endpoint"], endpoints["region"]))
        session = boto3.session.Session(region_name=endpoints["region"])
        table = endpoints["tables"]["main"]
        tenant = endpoints.get("tenant")
    else:
        session = boto3.session.Session(region_name=args.region)
        table = table_of(f"CouponClearing-{args.tenant}", session.client("cloudformation"))
        tenant = args.tenant
    # The same calendar the tenant's clearing function has, so a re-cleared posting is due when a
    # streamed one would be.
    calendar = load_tenant(tenant).business_calendar() if tenant else None
    summary = reclear(session.client("dynamodb"), table, args.up_to, calendar=calendar)
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
