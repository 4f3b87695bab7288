"""Cold start of the API function against the floor every DynamoDB-backed Python function pays.

Each sample is a fresh interpreter (a new Lambda container); only the time after the interpreter is
up is counted, as Lambda's Init Duration does. The environment is the deployed function's where it
changes what INIT does: LAMBDA_TASK_ROOT is set (the X-Ray SDK then builds its Lambda sampler; outside
Lambda it builds the centralized one, which makes two botocore clients at import, a cost no Lambda
pays) and tracing is on, as infra/constructs/function.py deploys it (Tracing.ACTIVE, botocore patched).
Figures:
  floor          import boto3 + one DynamoDB client (made at import, as most functions do)
  api init       import functions/api/handler.py (Lambda's INIT phase; clients are made lazily)
  api ready      api init + the DynamoDB client and stores its first request builds
Parts (each after what it stands on is already imported, so they add up to roughly api init - floor):
  pynamodb       the data layer's library (botocore already loaded)
  powertools     the resolver, logger, metrics and tracer (X-Ray SDK, botocore patched)
  pydantic       request and answer models (the API contract) and the domain's validated types
Times are medians of N runs on this machine, which is shared and noisy: read the ratios, not the ms.
Target (issue #12): api init <= 1.3 x floor.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "9"))
FUNCTION = ROOT / "functions" / "api"
LAYER = ROOT / "layers" / "core" / "python"

PRELUDE = """
import os, sys, time, json
os.environ.update(AWS_DEFAULT_REGION="eu-west-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                  MAIN_TABLE_NAME="bench", LAMBDA_TASK_ROOT={fn!r}, AWS_LAMBDA_FUNCTION_NAME="api")
os.environ.pop("POWERTOOLS_TRACE_DISABLED", None)
sys.path[:0] = [{fn!r}, {layer!r}]
"""

TIMED = """
t = time.perf_counter()
{body}
print(json.dumps((time.perf_counter() - t) * 1000))
"""

# name → (imported before the clock starts, timed)
SNIPPETS = {
    "floor": ("", "import boto3\nboto3.client('dynamodb')"),
    "api init": ("", "import handler"),
    "api ready": (
        "",
        "import handler, dependencies\n"
        "dependencies.authenticator(); dependencies.campaigns(); dependencies.idempotency()",
    ),
    "pynamodb": ("import botocore.session, botocore.client", "import pynamodb.models, pynamodb.transactions"),
    "powertools": (
        "import botocore.session, botocore.client",
        "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
        "import aws_lambda_powertools.event_handler.api_gateway\n"
        "Tracer(patch_modules=('botocore',))",
    ),
    "pydantic": (
        "import aws_lambda_powertools.event_handler.api_gateway",
        "import pydantic\nimport answers\nimport coupons.domain.campaigns, coupons.domain.risk.rules",
    ),
}
PARTS = ("pynamodb", "powertools", "pydantic")


def sample(name: str) -> float:
    before, body = SNIPPETS[name]
    code = PRELUDE.format(fn=str(FUNCTION), layer=str(LAYER)) + before + TIMED.format(body=body)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> int:
    runs: dict[str, list[float]] = {name: [] for name in SNIPPETS}
    for _ in range(RUNS):  # interleaved, so drift in machine load hits every figure alike
        for name in SNIPPETS:
            runs[name].append(sample(name))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    floor = medians["floor"]
    print(f"cold start, median of {RUNS} fresh interpreters, Lambda's environment (ms; ratio to the floor)")
    for name, value in medians.items():
        label = f"  part: {name}" if name in PARTS else f"  {name}"
        print(f"{label:18} {value:7.1f} ms   {value / floor:4.2f} x")
    ratio = medians["api init"] / floor
    print(f"api init / floor = {ratio:.2f} (target <= 1.30): {'OK' if ratio <= 1.3 else 'OVER TARGET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
