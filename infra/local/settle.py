"""`make settle DATE=YYYY-MM-DD [KIND=intraday]`: start (or resume) the settlement run of settlement date
DATE on the running local stack, wait for it, and print what each party got.

DATE is the settlement date X: the daily run pays every posting due by X whose event came before the
start of X (so today's T+1 redemptions are paid by DATE=<tomorrow>); the intraday run (KIND=intraday)
pays what is due by X and came before the tenant's T+0 cut-off on X (today's T+0 redemptions before
22:00: DATE=<today> KIND=intraday). It starts the run as the API's POST /v1/settlement-runs does (the
same SettlementRuns.start: one run per date and kind, execution settle-{tenant}-{date}[-t0]-{attempt},
a failed run resumed), against the moto endpoint in .local/endpoints.json, with one difference: the
cut-off need not have passed yet, so that "tomorrow" can be settled today. The API refuses that.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from infra.local.moto_server import aws_env

DEFAULT_ENDPOINTS = Path(".local/endpoints.json")
FINAL = ("CLOSED", "FAILED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", required=True, help="the settlement date X, YYYY-MM-DD")
    parser.add_argument("--kind", default="daily", choices=("daily", "intraday"), help="the run's kind")
    parser.add_argument("--endpoints-file", type=Path, default=DEFAULT_ENDPOINTS)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the run")
    args = parser.parse_args(argv)
    if not args.endpoints_file.is_file():
        print(f"{args.endpoints_file} not found: start the local stack first (make local)", file=sys.stderr)
        return 2
    endpoints = json.loads(args.endpoints_file.read_text())
    os.environ.update(aws_env(endpoints["moto_endpoint"], endpoints["region"]))
    from infra.tenants import load_tenant

    t0_cutoff = load_tenant(endpoints["tenant"]).settlement_t0_cutoff
    os.environ.update(
        {
            **({"SETTLEMENT_T0_CUTOFF": t0_cutoff} if t0_cutoff else {}),
            "TENANT": endpoints["tenant"],
            "MAIN_TABLE_NAME": endpoints["tables"]["main"],
            "STATEMENTS_BUCKET_NAME": endpoints["buckets"]["statements"],
            "SETTLEMENT_STATE_MACHINE_ARN": endpoints["state_machines"]["settlement"],
            "TENANT_TIME_ZONE": endpoints.get("time_zone", "UTC"),
        }
    )
    from coupons.domain.errors import DomainError
    from coupons.domain.principals import Principal, Role
    from coupons.settlement_wiring import runs

    try:
        run, started = runs().start(
            args.date, Principal(Role.ADMIN), kind=args.kind, cutoff_must_have_passed=False
        )
    except DomainError as error:
        print(f"refused: {error.detail}", file=sys.stderr)
        return 2
    print(
        f"{run['run_id']}: {'started' if started else 'exists'} (attempt {run['attempt']}, {run['status']})"
    )
    deadline = time.monotonic() + args.timeout
    while True:
        view, _ = runs().get(run["run_id"], bucket=0, start=None, limit=50)
        stopped = view.get("execution_status") not in (None, "RUNNING", "NOT_STARTED")
        if view["status"] in FINAL or stopped or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(json.dumps(view, indent=2, ensure_ascii=False))
    base = endpoints["base_url"]
    print(
        f"statements: curl -s {base}/v1/settlement-runs/{run['run_id']}/statements/PARTY -H 'x-api-key: ...'"
    )
    return 0 if view["status"] == "CLOSED" else 1


if __name__ == "__main__":
    sys.exit(main())
