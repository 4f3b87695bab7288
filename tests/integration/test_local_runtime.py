"""The local Lambda runtime (infra/local/runtime.py + worker.py) on a moto server in this process: every way
moto invokes a function reaches the real handler in a worker process, one invocation per worker at a time,
with the function's own environment and its layers on the import path."""

from __future__ import annotations

import io
import json
import os
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.local import moto_server
from infra.local.deploy import FunctionSource
from infra.local.runtime import IDLE_RECLAIM_S, LocalRuntime

pytestmark = pytest.mark.xdist_group("local-runtime")

REPO = Path(__file__).resolve().parents[2]

HANDLER = """
import json, os, sys, time

import probe_layer


def lambda_handler(event, context):
    # Noise on stdout, as powertools metrics and stray prints make: must not reach the protocol.
    print("noise on stdout")
    sys.stdout.write("more noise without a newline")
    action = event.get("action") if isinstance(event, dict) else None
    if isinstance(event, dict) and "Records" in event:
        out = os.environ["OUT_DIR"]
        for record in event["Records"]:
            with open(os.path.join(out, record["eventID"]), "w") as f:
                json.dump(record, f)
        return {"batchItemFailures": []}
    if action == "boom":
        raise ValueError("boom")
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        os._exit(3)
    if action == "unserializable":
        return {"x": object()}
    if action == "double":
        return {"value": event["value"] * 2}
    return {
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "path": sys.path[:2],
        "repo_importable": any(p.rstrip("/") == os.environ.get("REPO_ROOT_FOR_TEST") for p in sys.path),
        "env": {k: os.environ.get(k) for k in ("ONLY_A", "ONLY_B", "AWS_LAMBDA_FUNCTION_NAME", "SHARED")},
        "layer": probe_layer.VALUE,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
    }
"""


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "# the code that runs is the local folder")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """moto + the local runtime in this process; everything it changed is put back afterwards, so the
    other integration tests (mock_aws in-process) in this worker see nothing of it."""
    from moto.core.config import default_user_config

    saved_env = dict(os.environ)
    saved_sfn = dict(default_user_config["stepfunctions"])
    root = tmp_path_factory.mktemp("local-runtime")
    code = root / "code"
    code.mkdir()
    (code / "handler.py").write_text(HANDLER)
    layer = root / "layer" / "python"
    layer.mkdir(parents=True)
    (layer / "probe_layer.py").write_text('VALUE = "from the layer"\n')
    empty_layer = root / "deps"  # a layer without python/ (the deps layer when bundling is skipped)
    empty_layer.mkdir()
    out_dir = root / "out"
    out_dir.mkdir()

    server = moto_server.start(region="eu-west-1")
    import boto3

    iam = boto3.client("iam")
    role = iam.create_role(RoleName="probe", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda")
    sources = {}
    for name, env, timeout in [
        ("probe-a", {"ONLY_A": "a", "SHARED": "from-a", "OUT_DIR": str(out_dir)}, 10),
        ("probe-b", {"ONLY_B": "b", "SHARED": "from-b", "OUT_DIR": str(out_dir)}, 10),
        ("probe-short", {"OUT_DIR": str(out_dir)}, 1),
    ]:
        env["REPO_ROOT_FOR_TEST"] = str(REPO)
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="handler.lambda_handler",
            Code={"ZipFile": _zip()},
            Timeout=timeout,
            MemorySize=256,
            Environment={"Variables": env},
        )
        sources[name] = FunctionSource(
            logical_id=name,
            code_dir=code,
            layer_dirs=(layer, empty_layer / "python"),
            handler="handler.lambda_handler",
        )
    runtime = LocalRuntime(sources, moto_endpoint=server.endpoint, region="eu-west-1", log_dir=root / "logs")
    runtime.install()
    try:
        yield {"runtime": runtime, "server": server, "out_dir": out_dir, "logs": root / "logs", "code": code}
    finally:
        runtime.close()
        server.stop()
        default_user_config["stepfunctions"].clear()
        default_user_config["stepfunctions"].update(saved_sfn)
        os.environ.clear()
        os.environ.update(saved_env)


@pytest.fixture
def lam(local):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda", config=Config(retries={"total_max_attempts": 1}, read_timeout=60, max_pool_connections=20)
    )


def invoke(lam, name, event) -> tuple[dict, str | None]:
    reply = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return json.loads(reply["Payload"].read()), reply.get("FunctionError")


def test_handler_runs_with_its_own_environment_and_layers(lam, local):
    a, error = invoke(lam, "probe-a", {})
    assert error is None, a
    b, _ = invoke(lam, "probe-b", {})
    assert a["layer"] == "from the layer"
    assert a["env"] == {
        "ONLY_A": "a",
        "ONLY_B": None,
        "AWS_LAMBDA_FUNCTION_NAME": "probe-a",
        "SHARED": "from-a",
    }
    assert b["env"] == {
        "ONLY_A": None,
        "ONLY_B": "b",
        "AWS_LAMBDA_FUNCTION_NAME": "probe-b",
        "SHARED": "from-b",
    }
    # /var/task first and as the working directory; nothing of the repository tree on the path.
    assert a["path"][0] == str(local["code"]) and a["cwd"] == str(local["code"])
    assert a["repo_importable"] is False
    assert a["endpoint"] == local["server"].endpoint
    assert a["function_name"] == "probe-a" and a["memory"] == 256
    assert 0 < a["remaining_ms"] <= 10_000
    assert a["pid"] != b["pid"]


def test_handler_output_goes_to_the_log_not_the_reply(lam, local):
    answer, error = invoke(lam, "probe-a", {"action": "double", "value": 21})
    assert (answer, error) == ({"value": 42}, None)
    log = (local["logs"] / "probe-a.log").read_text()
    assert "noise on stdout" in log and "START RequestId" in log


def test_an_exception_is_a_lambda_error(lam):
    answer, error = invoke(lam, "probe-a", {"action": "boom"})
    assert error is not None
    assert answer["errorType"] == "ValueError"
    assert answer["errorMessage"] == "boom"
    assert isinstance(answer["stackTrace"], list) and answer["stackTrace"]
    # The container survives a handled error, as Lambda's does.
    again, error = invoke(lam, "probe-a", {"action": "double", "value": 1})
    assert (again, error) == ({"value": 2}, None)


def test_an_unserializable_result_is_a_marshal_error(lam):
    answer, error = invoke(lam, "probe-a", {"action": "unserializable"})
    assert error is not None and answer["errorType"] == "Runtime.MarshalError"


def test_concurrent_invocations_each_get_their_own_worker(lam):
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _: invoke(lam, "probe-b", {"action": "sleep", "seconds": 1.0}), range(4))
        )
    elapsed = time.monotonic() - started
    # Four one-second invocations ran side by side, each in a worker of its own...
    assert elapsed < 3.5, elapsed
    pids = {answer["pid"] for answer, _ in answers}
    assert len(pids) == 4
    # ...which stay warm: later invocations find one of them.
    assert {invoke(lam, "probe-b", {})[0]["pid"] for _ in range(3)} <= pids


def test_idle_workers_past_the_one_kept_warm_are_reclaimed(lam, local):
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _: invoke(lam, "probe-b", {"action": "sleep", "seconds": 1.0}), range(4))
        )
    pids = {answer["pid"] for answer, _ in answers}
    assert len(pids) == 4

    # What the reclaimer thread does every few seconds, as if IDLE_RECLAIM_S had passed.
    local["runtime"]._pool("probe-b").reclaim(time.monotonic() + IDLE_RECLAIM_S)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 10
    while sum(alive(pid) for pid in pids) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = {pid for pid in pids if alive(pid)}
    assert len(survivors) == 1
    # The one kept warm still serves the next invocation.
    assert invoke(lam, "probe-b", {})[0]["pid"] in survivors


def test_a_timeout_discards_the_worker(lam):
    answer, error = invoke(lam, "probe-short", {"action": "sleep", "seconds": 5})
    assert error is not None
    assert answer["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in answer["errorMessage"]
    answer, error = invoke(lam, "probe-short", {"action": "double", "value": 2})
    assert (answer, error) == ({"value": 4}, None)


def test_a_crashed_worker_is_replaced(lam):
    answer, error = invoke(lam, "probe-a", {"action": "exit"})
    assert error is not None and answer["errorType"] == "Runtime.ExitError"
    answer, error = invoke(lam, "probe-a", {"action": "double", "value": 3})
    assert (answer, error) == ({"value": 6}, None)


def test_a_configuration_update_starts_fresh_workers(lam):
    before, _ = invoke(lam, "probe-b", {})
    config = lam.get_function_configuration(FunctionName="probe-b")
    env = config["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName="probe-b", Environment={"Variables": {**env, "ONLY_B": "b2"}}
    )
    after, _ = invoke(lam, "probe-b", {})
    assert after["env"]["ONLY_B"] == "b2"
    assert after["pid"] != before["pid"]


def test_dynamodb_stream_records_reach_the_handler(local):
    import boto3

    ddb = boto3.client("dynamodb")
    table = ddb.create_table(
        TableName="probe-stream",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    boto3.client("lambda").create_event_source_mapping(
        EventSourceArn=table["LatestStreamArn"], FunctionName="probe-a", StartingPosition="TRIM_HORIZON"
    )
    ddb.put_item(TableName="probe-stream", Item={"pk": {"S": "hello"}})
    # Delivered after the write, as Lambda's poller does (streams.py): wait for it.
    deadline = time.monotonic() + 20
    while True:
        records = [json.loads(p.read_text()) for p in local["out_dir"].iterdir()]
        found = [r for r in records if r["dynamodb"]["Keys"] == {"pk": {"S": "hello"}}]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [r["eventName"] for r in found] == ["INSERT"]


def test_step_functions_lambda_tasks_reach_the_handler(local):
    import boto3

    sfn = boto3.client("stepfunctions")
    arn = boto3.client("lambda").get_function(FunctionName="probe-a")["Configuration"]["FunctionArn"]
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload": {"action": "double", "value.$": "$.value"}},
                "OutputPath": "$.Payload",
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="probe", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/probe"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"value": 5}))["executionArn"]
    deadline = time.monotonic() + 30
    while True:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"value": 10}


def test_worker_is_the_stdlib_only_script():
    # The worker must not import the repository's packages before the handler (cold start, isolation).
    source = (REPO / "infra" / "local" / "worker.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert all(line.split()[1].split(".")[0] in sys.stdlib_module_names | {"__future__"} for line in imports)
