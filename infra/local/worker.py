"""One warm Lambda "container": a process that imports one function's handler and runs its invocations,
one at a time, for as long as the parent keeps it.

Started by runtime.py as `python <this file>` (by path, not `-m infra.local.worker`, so that no package
of the repository is imported into the container) with the function's environment and its code folder
as the working directory. Protocol: one JSON object per line, requests on stdin, replies on the
original stdout; everything the handler prints goes to stderr (the function's log), never into the
protocol. Only the standard library is imported here before the handler, so the handler's own import
cost is what a cold start measures.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback


class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and powertools read."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str):
        env = os.environ
        self.function_name = env["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = invoked_function_arn
        self.aws_request_id = request_id
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def error_payload(exc: BaseException, error_type: str | None = None) -> dict:
    """The shape Lambda's Python runtime reports an unhandled exception in."""
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def _take_protocol_streams():
    # The handler (and powertools' metrics) print to stdout: keep fd 1 for the protocol only by moving
    # it aside and pointing fd 1 at stderr, so even C-level writes land in the log.
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", encoding="utf-8", buffering=1, closefd=False)
    proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    return proto_in, proto_out


def _set_import_path() -> None:
    """sys.path as Lambda has it: the code folder (/var/task) first, then each layer's python/ (/opt/python),
    then the runtime's own packages (here, the venv). Nothing from the repository tree."""
    layers = [p for p in os.environ.pop("LOCAL_WORKER_LAYERS", "").split(os.pathsep) if p]
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    os.environ.pop("PYTHONPATH", None)
    dropped = {os.path.realpath(p) for p in (os.path.dirname(os.path.abspath(__file__)), task_root)}
    rest = [p for p in sys.path if p and os.path.realpath(p) not in dropped]
    sys.path[:] = [task_root, *[p for p in layers if os.path.isdir(p)], *rest]
    importlib.invalidate_caches()


def _load_handler():
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


def main() -> int:
    proto_in, proto_out = _take_protocol_streams()
    _set_import_path()

    def send(message: dict) -> None:
        proto_out.write(json.dumps(message, separators=(",", ":")) + "\n")
        proto_out.flush()

    started = time.perf_counter()
    try:
        handler = _load_handler()
    except BaseException as exc:  # noqa: BLE001 - any init failure is the function's error to report
        error_type = "Runtime.ImportModuleError" if isinstance(exc, ImportError) else type(exc).__name__
        print(f"INIT failed: {error_type}: {exc}", file=sys.stderr)
        traceback.print_exc()
        send({"type": "init_error", "error": error_payload(exc, error_type)})
        return 1
    init_ms = (time.perf_counter() - started) * 1000
    print(f"INIT {os.environ['_HANDLER']} in {init_ms:.0f} ms (pid {os.getpid()})", file=sys.stderr)
    send({"type": "ready", "init_ms": init_ms, "pid": os.getpid()})

    for line in proto_in:
        request = json.loads(line)
        request_id = request["request_id"]
        print(f"START RequestId: {request_id}", file=sys.stderr)
        context = LambdaContext(request_id, request["deadline_ms"], request["function_arn"])
        started = time.perf_counter()
        try:
            result = handler(request["event"], context)
            try:
                reply = {"type": "result", "ok": True, "payload": json.dumps(result)}
            except (TypeError, ValueError) as exc:
                reply = {"type": "result", "ok": False, "error": error_payload(exc, "Runtime.MarshalError")}
        except Exception as exc:  # noqa: BLE001 - reported to the caller as Lambda reports it
            traceback.print_exc()
            error = error_payload(exc)
            error["requestId"] = request_id
            reply = {"type": "result", "ok": False, "error": error}
        duration = (time.perf_counter() - started) * 1000
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"END RequestId: {request_id}", file=sys.stderr)
        print(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms", file=sys.stderr)
        send(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
