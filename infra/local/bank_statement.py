"""`make bank-statement DATE=YYYY-MM-DD INJECT="missing=1,returned=1,fee=1,cutoff=1" SEED=0`: the simulated
bank writes its statement of DATE into the running local stack's statements bucket
(channel-statements/simulated/{DATE}.csv.gz), with the differences INJECT asks for on lines chosen by
SEED (kinds: missing, duplicate, amount, fee, failed, returned, previous_day or cutoff, unknown,
currency). The upload is what starts reconciliation, as a real channel's file would.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from infra.local.moto_server import aws_env

DEFAULT_ENDPOINTS = Path(".local/endpoints.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", required=True, help="the bank's statement day, YYYY-MM-DD")
    parser.add_argument("--inject", default="", help="kind=count,... (docs/reconciliation.md)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--endpoints-file", type=Path, default=DEFAULT_ENDPOINTS)
    args = parser.parse_args(argv)
    if not args.endpoints_file.is_file():
        print(f"{args.endpoints_file} not found: start the local stack first (make local)", file=sys.stderr)
        return 2
    endpoints = json.loads(args.endpoints_file.read_text())
    os.environ.update(aws_env(endpoints["moto_endpoint"], endpoints["region"]))
    from coupons.channels.simulated import SimulatedBank
    from coupons.data import clients
    from coupons.data.channel_statements import ChannelStatementStore
    from coupons.services.channel_statements import publish_statement

    bank = SimulatedBank(clients.dynamodb(), endpoints["tables"]["simulatedBank"])
    published = publish_statement(
        bank,
        ChannelStatementStore(clients.s3(), endpoints["buckets"]["statements"]),
        channel_name="simulated",
        statement_date=args.date,
        time_zone=endpoints.get("time_zone", "UTC"),
        inject=args.inject,
        seed=args.seed,
    )
    print(f"{published.key} (version {published.version_id}): {published.lines} lines")
    for injected in published.injected:
        print(f"  {injected.injection.kind}: {injected.injection.instruction_id or '-'} -> {injected.expected} {injected.key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
