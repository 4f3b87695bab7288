"""`make local`: the tenant's real template on moto, its API on 127.0.0.1, demo data seeded.

    python -m infra.local --tenant demo --port 3000 [--endpoints-file .local/endpoints.json]

Prints `READY <base_url>` once it serves, and runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

log = logging.getLogger("local")

REPO_ROOT = Path(__file__).resolve().parents[2]


class Phases:
    """Wall-clock time of each start-up phase, logged as it ends: the 60 s budget is watched here."""

    def __init__(self):
        self.started = time.perf_counter()
        self.times: dict[str, float] = {}

    def run(self, name: str, fn, *args, **kwargs):
        began = time.perf_counter()
        result = fn(*args, **kwargs)
        self.times[name] = time.perf_counter() - began
        log.info("%-8s %5.1f s", name, self.times[name])
        return result

    def total(self) -> float:
        return time.perf_counter() - self.started


def _quiet_libraries() -> None:
    # moto warns once per resource type it skips; deploy.py lists them once instead.
    warnings.filterwarnings("ignore", message="Tried to parse .* but it's not supported")
    for name in ("werkzeug", "botocore", "boto3", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("moto").setLevel(logging.ERROR)


def _region_of(tenant: str) -> str:
    path = REPO_ROOT / "infra" / "tenants" / f"{tenant}.json"
    if path.exists():
        region = json.loads(path.read_text()).get("region")
        if region:
            return region
    return "us-east-1"


def _friendly(outputs: dict[str, str], suffix: str) -> dict[str, str]:
    """MainTableName → main, StatementsBucketName → statements."""
    found = {}
    for key, value in outputs.items():
        if key.endswith(suffix) and len(key) > len(suffix):
            stem = key[: -len(suffix)]
            found[stem[0].lower() + stem[1:]] = value
    return found


def endpoints_document(deployment, gateway, seeded, moto, log_dir: Path) -> dict:
    from infra.tenants import load_tenant

    outputs = deployment.outputs
    functions = _friendly(outputs, "FunctionName")
    named = set(functions.values())
    for logical_id, name in sorted(deployment.of_type("AWS::Lambda::Function").items()):
        if name not in named:
            # SettlementStepsOpenFunction410837AC → settlementStepsOpen
            stem = re.sub(r"Function[0-9A-F]{8}$", "", logical_id)
            functions[stem[0].lower() + stem[1:]] = name
    tables = _friendly(outputs, "TableName")
    for logical_id, name in sorted(deployment.of_type("AWS::DynamoDB::Table").items()):
        if name not in tables.values():
            tables[logical_id] = name
    buckets = _friendly(outputs, "BucketName")
    state_machines = _friendly(outputs, "StateMachineArn")
    for logical_id, arn in sorted(deployment.of_type("AWS::StepFunctions::StateMachine").items()):
        if arn not in state_machines.values():
            state_machines[logical_id] = arn
    return {
        "base_url": gateway.url,
        "keys": seeded.keys,
        "key_ids": seeded.key_ids,
        "moto_endpoint": moto.endpoint,
        "region": deployment.region,
        "account": deployment.account,
        "stack_name": deployment.stack_name,
        "tenant": outputs.get("TenantName"),
        # The tenant's business day (what `make settle` and T+N count in).
        "time_zone": load_tenant(outputs["TenantName"]).settlement_time_zone
        if "TenantName" in outputs
        else "UTC",
        "api_stage": gateway.api.stage,
        "tables": tables,
        "buckets": buckets,
        "state_machines": state_machines,
        # Made by the deployer (moto's CloudFormation skips them): ARN by logical id.
        "secrets": deployment.of_type("AWS::SecretsManager::Secret"),
        "functions": functions,
        # ClearingDlqUrl → clearing: the on-failure destinations of the stream mappings.
        "dead_letter_queues": _friendly(outputs, "DlqUrl"),
        "campaigns": seeded.campaigns,
        "outputs": outputs,
        "logs": str(log_dir),
    }


def _print_endpoints(doc: dict, path: Path) -> None:
    lines = [
        "",
        f"Local stack {doc['stack_name']} (tenant {doc['tenant']}) on moto",
        f"  API           {doc['base_url']}   (stage {doc['api_stage']})",
        f"  OpenAPI       {doc['base_url']}/v1/openapi.json",
        f"  moto          {doc['moto_endpoint']}   region {doc['region']}",
        "  API keys (x-api-key):",
        *(f"    {principal:<20} {key}" for principal, key in doc["keys"].items()),
        "  tables:        " + ", ".join(f"{k}={v}" for k, v in doc["tables"].items()),
        "  buckets:       " + (", ".join(f"{k}={v}" for k, v in doc["buckets"].items()) or "-"),
        "  state machines:"
        + (
            " " + ", ".join(f"{k}={v}" for k, v in doc["state_machines"].items())
            if doc["state_machines"]
            else " -"
        ),
        "  functions:     " + ", ".join(f"{k}={v}" for k, v in doc["functions"].items()),
        "  campaigns:     " + ", ".join(f"{k}={v}" for k, v in doc["campaigns"].items()),
        f"  function logs {doc['logs']}",
        f"  all of it in  {path}",
        "",
        "Try:",
        f"  curl -s {doc['base_url']}/v1/campaigns -H 'x-api-key: {doc['keys'].get('admin', '')}'",
        "",
    ]
    print("\n".join(lines), flush=True)


def _find_rest_api(deployment) -> str:
    apis = deployment.of_type("AWS::ApiGateway::RestApi")
    if not apis:
        raise RuntimeError("the stack has no API Gateway RestApi")
    url = deployment.outputs.get("ApiUrl", "")
    for api_id in apis.values():
        if f"//{api_id}." in url:
            return api_id
    return next(iter(apis.values()))


def _stage_of(deployment, api_id: str) -> str:
    """moto skips AWS::ApiGateway::Stage, so the stage name comes from the template."""
    resources = deployment.template["Resources"]
    logical = next(lid for lid, pid in deployment.physical.items() if pid == api_id)
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::ApiGateway::Stage" and props.get("RestApiId") == {"Ref": logical}:
            return props.get("StageName", "prod")
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::ApiGateway::Deployment" and props.get("StageName"):
            return props["StageName"]
    return "prod"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tenant", default="demo")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "3000")),
        help="API port on 127.0.0.1 (0: any free port)",
    )
    parser.add_argument("--endpoints-file", type=Path, default=REPO_ROOT / ".local" / "endpoints.json")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="synthesized app and function logs (default: the endpoints file's folder)",
    )
    parser.add_argument("--region", default=None)
    parser.add_argument("--no-seed", action="store_true", help="deploy and serve, but create no demo data")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)-14s %(message)s", stream=sys.stderr)
    _quiet_libraries()

    endpoints_file = args.endpoints_file.resolve()
    state_dir = (args.state_dir or endpoints_file.parent).resolve()
    log_dir = state_dir / "logs"
    region = args.region or _region_of(args.tenant)

    stop = threading.Event()
    serving = threading.Event()

    def on_signal(signum, _frame):
        log.info("signal %s: shutting down", signal.Signals(signum).name)
        if not serving.is_set():
            # Still starting: abandon start-up; the ExitStack stops whatever already runs.
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from infra.local import deploy, gateway, moto_server, runtime, schedules, seed

    phases = Phases()
    with ExitStack() as cleanup:
        try:
            gw = gateway.Gateway(port=args.port)
        except OSError as err:
            log.error(
                "cannot listen on 127.0.0.1:%s (%s); choose another with PORT=... or --port", args.port, err
            )
            return 2
        cleanup.callback(gw.stop)
        # The CDK synth (Node) and moto's start are independent: overlap them.
        with ThreadPoolExecutor(2) as pool:
            synth_future = pool.submit(
                phases.run, "synth", deploy.synthesize, args.tenant, state_dir / "cdk.out"
            )
            moto = phases.run("moto", moto_server.start, region)
            cleanup.callback(moto.stop)
            synth = synth_future.result()
        deployment = phases.run("deploy", deploy.deploy, synth, region=region)

        local_runtime = runtime.LocalRuntime(
            deployment.functions, moto_endpoint=moto.endpoint, region=region, log_dir=log_dir
        )
        local_runtime.install()
        cleanup.callback(local_runtime.close)
        # One warm worker per function, started alongside the rest of the start-up.
        warming = ThreadPoolExecutor(max(1, len(deployment.functions)))
        warm_futures = {name: warming.submit(local_runtime.warm, name) for name in deployment.functions}
        warming.shutdown(wait=False)

        api_id = _find_rest_api(deployment)
        api = phases.run(
            "routes",
            gateway.load_rest_api,
            api_id,
            stage=_stage_of(deployment, api_id),
            account=deployment.account,
            region=region,
        )
        gw.start(api)

        # The schedules moto creates but never fires (the redemption holds' expiry sweep): schedules.py.
        scheduler = schedules.start(deployment, region)
        cleanup.callback(scheduler.stop)

        inits = phases.run("warm", lambda: {name: f.result() for name, f in warm_futures.items()})
        for name, init_ms in inits.items():
            log.info("  %s: handler init %.0f ms", name, init_ms or 0)

        if args.no_seed:
            seeded = seed.Seeded()
        else:
            try:
                seeded = phases.run("seed", seed.seed, gw.url, deployment.stack_name, region=region)
            except seed.SeedError as err:
                log.error("seeding the demo data failed: %s\n(the function logs are in %s)", err, log_dir)
                return 1

        doc = endpoints_document(deployment, gw, seeded, moto, log_dir)
        endpoints_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = endpoints_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(endpoints_file)
        _print_endpoints(doc, endpoints_file)
        log.info(
            "ready in %.1f s (%s)",
            phases.total(),
            ", ".join(f"{k} {v:.1f}s" for k, v in phases.times.items()),
        )
        serving.set()
        print(f"READY {gw.url}", flush=True)

        stop.wait()
    log.info("stopped")
    return 0


def run() -> int:
    try:
        return main()
    except KeyboardInterrupt:
        log.info("interrupted during start-up")
        return 130


if __name__ == "__main__":
    sys.exit(run())
