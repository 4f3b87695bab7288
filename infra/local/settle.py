"""`make settle DATE=YYYY-MM-DD`: start (or resume) the settlement run of a date on the running local stack,
wait for it, and print what each party got.

It starts the run as the API's POST /v1/settlement-runs does (the same SettlementRuns.start: one run per
date, execution settle-{tenant}-{date}-{attempt}, a failed run resumed), against the moto endpoint in
.local/endpoints.json, with one difference: the date need not be over yet, so that today's T+1
redemptions can be settled "tomorrow" without waiting for it. The API refuses such a date.
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
    parser.add_argument("--date", required=True, help="the business date to settle, YYYY-MM-DD")
    parser.add_argument("--endpoints-file", type=Path, default=DEFAULT_ENDPOINTS)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the run")
    args = parser.parse_args(argv)
    if not args.endpoints_file.is_file():
        print(f"{args.endpoints_file} not found: start the local stack first (make local)", file=sys.stderr)
        return 2
    endpoints = json.loads(args.endpoints_file.read_text())
    os.environ.update(aws_env(endpoints["moto_endpoint"], endpoints["region"]))
    os.environ.update(
        {
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
        run, started = runs().start(args.date, Principal(Role.ADMIN), day_must_be_over=False)
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
