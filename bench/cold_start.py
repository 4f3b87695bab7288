"""Cold start of the API function against the floor every DynamoDB-backed Python function pays.

Each sample is a fresh interpreter (a new Lambda container); only the time after the interpreter is
up is counted, as Lambda's Init Duration does. Figures:
  floor          import boto3 + one DynamoDB client (made at import, as most functions do)
  api init       import functions/api/handler.py (Lambda's INIT phase; clients are made lazily)
  api ready      api init + the DynamoDB client and stores its first request builds
Times are medians of N runs on this machine, which is shared and noisy: read the ratios, not the ms.
Target: api init <= 1.3 x floor.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "9"))

PRELUDE = """
import os, sys, time, json
os.environ.update(AWS_DEFAULT_REGION="eu-west-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                  MAIN_TABLE_NAME="bench", POWERTOOLS_TRACE_DISABLED="true")
"""

SNIPPETS = {
    "floor": """
t = time.perf_counter()
import boto3
boto3.client("dynamodb")
print(json.dumps((time.perf_counter() - t) * 1000))
""",
    "api init": """
sys.path[:0] = [{fn!r}, {layer!r}]
t = time.perf_counter()
import handler
print(json.dumps((time.perf_counter() - t) * 1000))
""",
    "api ready": """
sys.path[:0] = [{fn!r}, {layer!r}]
t = time.perf_counter()
import handler, dependencies
dependencies.authenticator(); dependencies.campaigns(); dependencies.idempotency()
print(json.dumps((time.perf_counter() - t) * 1000))
""",
}


def sample(name: str) -> float:
    code = PRELUDE + SNIPPETS[name].format(
        fn=str(ROOT / "functions" / "api"), layer=str(ROOT / "layers" / "core" / "python")
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> int:
    runs: dict[str, list[float]] = {name: [] for name in SNIPPETS}
    for _ in range(RUNS):  # interleaved, so drift in machine load hits every figure alike
        for name in SNIPPETS:
            runs[name].append(sample(name))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    floor = medians["floor"]
    print(f"cold start, median of {RUNS} fresh interpreters (ms; ratio to the floor)")
    for name, value in medians.items():
        print(f"  {name:10} {value:7.1f} ms   {value / floor:4.2f} x")
    ratio = medians["api init"] / floor
    print(f"api init / floor = {ratio:.2f} (target <= 1.30): {'OK' if ratio <= 1.3 else 'OVER TARGET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
