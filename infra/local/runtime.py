"""Lambda execution without Docker: every invocation moto makes (Invoke, DynamoDB stream mappings, Step
Functions tasks, EventBridge targets) is routed to worker processes that run the real handler.

Why processes and not threads: Lambda never runs two invocations in one container at once, and code
written for Lambda relies on it (powertools' resolvers keep the current event in class-level state). So
each function gets a pool of workers, each handling one invocation at a time and kept warm for the next,
as Lambda keeps containers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from infra.local.deploy import FunctionSource
from infra.local.moto_server import aws_env
from infra.local.streams import StreamDelivery

log = logging.getLogger("local.runtime")

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
# Per function, like a reserved concurrency: past it an invocation waits for a worker to come free...
MAX_WORKERS = 8
# ...unless it waited this long: a function whose writes trigger itself synchronously (moto delivers
# stream records inside the write) would otherwise wait on its own busy workers forever.
OVERFLOW_AFTER_S = 3.0
OVERFLOW_MAX_WORKERS = 4 * MAX_WORKERS
# Lambda reclaims idle containers; so do we, past the one kept warm: a burst (64 threads on one coupon)
# otherwise leaves up to 32 idle workers per function for good, some 65 MB each, on every local stack.
IDLE_RECLAIM_S = 30.0
# The worker's start-up (imports) is not counted against the function timeout, as Lambda's init isn't.
INIT_TIMEOUT_S = 30.0


class WorkerDied(Exception):
    pass


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker is started with; a worker serves only invocations with an equal config."""

    function_name: str
    function_arn: str
    handler: str
    code_dir: str
    layer_dirs: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    timeout_s: float

    def environ(self) -> dict[str, str]:
        return dict(self.env)


class Worker:
    def __init__(self, config: WorkerConfig, log_path: Path):
        self.config = config
        self.idle_since = time.monotonic()
        env = config.environ()
        env["LOCAL_WORKER_LAYERS"] = os.pathsep.join(config.layer_dirs)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(log_path, "ab")  # noqa: SIM115 - closed with the worker
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT)],
            cwd=config.code_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            # Its own session: Ctrl-C in the terminal reaches the parent, which then stops workers
            # between invocations rather than in the middle of one.
            start_new_session=True,
        )
        self.init_error: dict | None = None
        ready = self._read(INIT_TIMEOUT_S)
        if ready is None:
            self.kill()
            raise WorkerDied(f"{config.function_name}: worker did not start in {INIT_TIMEOUT_S:.0f} s")
        if ready["type"] == "init_error":
            self.init_error = ready["error"]
        self.init_ms = ready.get("init_ms")

    def _read(self, timeout: float) -> dict | None:
        """One reply line, or None on timeout or if the worker died."""
        readable, _, _ = select.select([self.proc.stdout], [], [], max(0.0, timeout))
        if not readable:
            return None
        line = self.proc.stdout.readline()
        if not line:
            return None
        return json.loads(line)

    def invoke(self, event, request_id: str) -> tuple[str, bool]:
        timeout = self.config.timeout_s
        deadline_ms = int((time.time() + timeout) * 1000)
        request = {
            "request_id": request_id,
            "event": event,
            "deadline_ms": deadline_ms,
            "function_arn": self.config.function_arn,
        }
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(str(exc)) from exc
        reply = self._read(timeout)
        if reply is None:
            # A closed pipe comes a moment before the process can be reaped: give a dying worker a
            # second to finish exiting, so a crash is not mistaken for a timeout.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(1.0)
            alive = self.proc.poll() is None
            self.kill()
            if alive:
                # Lambda's words for it; the container is discarded, as Lambda discards it.
                message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
                return json.dumps({"errorMessage": message, "errorType": "Sandbox.Timedout"}), True
            raise WorkerDied(f"exit code {self.proc.returncode}")
        if reply["ok"]:
            return reply["payload"], False
        return json.dumps(reply["error"]), True

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 2.0) -> None:
        # End of input is the worker's signal to finish its loop and exit.
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log_file.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self._log_file.close()


class FunctionPool:
    """The warm workers of one function."""

    def __init__(self, name: str, log_path: Path):
        self.name = name
        self.log_path = log_path
        self._cond = threading.Condition()
        self._idle: list[Worker] = []
        self._count = 0  # workers started and not yet discarded, busy or idle
        self._closed = False

    def _acquire(self, config: WorkerConfig) -> Worker | None:
        """An idle worker with this config, or None after reserving a slot for a new one."""
        waited_since = time.monotonic()
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("local runtime is shutting down")
                stale = [w for w in self._idle if w.config != config or not w.alive()]
                for worker in stale:
                    # An updated configuration (or a dead worker) means a fresh container, as in Lambda.
                    self._idle.remove(worker)
                    self._count -= 1
                    worker.stop()
                if self._idle:
                    return self._idle.pop()
                limit = MAX_WORKERS
                if time.monotonic() - waited_since >= OVERFLOW_AFTER_S:
                    limit = OVERFLOW_MAX_WORKERS
                if self._count < limit:
                    self._count += 1
                    return None
                self._cond.wait(0.25)

    def _release(self, worker: Worker | None) -> None:
        with self._cond:
            if worker is not None and worker.alive() and not self._closed:
                worker.idle_since = time.monotonic()
                self._idle.append(worker)
            else:
                self._count -= 1
                if worker is not None:
                    worker.kill()
            self._cond.notify()

    def invoke(self, config: WorkerConfig, event) -> tuple[str, bool]:
        request_id = str(uuid.uuid4())
        worker = self._acquire(config)
        try:
            if worker is None:
                worker = Worker(config, self.log_path)
            if worker.init_error is not None:
                error = worker.init_error
                worker.kill()
                return json.dumps(error), True
            return worker.invoke(event, request_id)
        except WorkerDied as exc:
            if worker is not None:
                worker.kill()
            error = {
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited: {exc}",
                "errorType": "Runtime.ExitError",
            }
            return json.dumps(error), True
        finally:
            self._release(worker)

    def reclaim(self, now: float) -> None:
        """Stops the workers idle for IDLE_RECLAIM_S, but the most recently used one (kept warm)."""
        with self._cond:
            # _acquire pops the last: the most recently released one stays, however long it idles.
            old = [w for w in self._idle[:-1] if now - w.idle_since >= IDLE_RECLAIM_S]
            for worker in old:
                self._idle.remove(worker)
                self._count -= 1
        for worker in old:
            worker.stop()

    def warm(self, config: WorkerConfig) -> float | None:
        """Start one worker now (if none is idle), so the first real request finds it ready."""
        worker = self._acquire(config)
        try:
            if worker is None:
                worker = Worker(config, self.log_path)
            return worker.init_ms
        finally:
            self._release(worker)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            worker.stop()


class LocalRuntime:
    """Runs the deployed functions' code for moto; install() routes moto's invocations here."""

    def __init__(
        self,
        functions: dict[str, FunctionSource],
        *,
        moto_endpoint: str,
        region: str,
        log_dir: Path,
        extra_env: dict[str, str] | None = None,
    ):
        self.functions = functions
        self.moto_endpoint = moto_endpoint
        self.region = region
        self.log_dir = log_dir
        self.extra_env = extra_env or {}
        self._pools: dict[str, FunctionPool] = {}
        self._lock = threading.Lock()
        self._original = None
        self._streams: StreamDelivery | None = None
        self._stopping = threading.Event()
        self._reclaimer: threading.Thread | None = None

    def _pool(self, function_name: str) -> FunctionPool:
        with self._lock:
            if function_name not in self._pools:
                # Named by logical id: stable across runs, where moto's physical names are random.
                log_name = self.functions[function_name].logical_id
                self._pools[function_name] = FunctionPool(function_name, self.log_dir / f"{log_name}.log")
            return self._pools[function_name]

    def config_for(self, fn) -> WorkerConfig:
        """The worker configuration of a moto LambdaFunction, read at each invocation so that an
        update_function_configuration takes effect the way it does in Lambda (new containers)."""
        source = self.functions[fn.function_name]
        region = fn.region
        # The function's own variables, never another function's; then what Lambda itself sets
        # (reserved names win, as Lambda refuses them in a function's configuration).
        env: dict[str, str] = {k: str(v) for k, v in (fn.environment_vars or {}).items()}
        env.update(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "TZ": "UTC",
                "PYTHONUNBUFFERED": "1",
                "_HANDLER": source.handler,
                "LAMBDA_TASK_ROOT": str(source.code_dir),
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
                "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "local",
                # No X-Ray daemon here: the tracer would only warn about missing segments.
                "POWERTOOLS_TRACE_DISABLED": "true",
                **aws_env(self.moto_endpoint, region),
                **self.extra_env,
            }
        )
        return WorkerConfig(
            function_name=fn.function_name,
            function_arn=fn.function_arn,
            handler=source.handler,
            code_dir=str(source.code_dir),
            layer_dirs=tuple(str(p) for p in source.layer_dirs),
            env=tuple(sorted(env.items())),
            timeout_s=float(fn.timeout or 3),
        )

    def invoke(self, fn, event) -> tuple[str, bool, str]:
        """moto's LambdaFunction._invoke_lambda contract: (output, errored, logs)."""
        if fn.function_name not in self.functions:
            error = {
                "errorMessage": f"{fn.function_name} has no local code (not a function of the deployed stack)",
                "errorType": "Local.UnknownFunction",
            }
            return json.dumps(error), True, ""
        if event == "{}":
            # moto passes the literal "{}" for an Invoke with no payload.
            event = {}
        started = time.perf_counter()
        output, errored = self._pool(fn.function_name).invoke(self.config_for(fn), event)
        log.debug(
            "%s %s in %.0f ms",
            fn.function_name,
            "failed" if errored else "ok",
            (time.perf_counter() - started) * 1000,
        )
        return output, errored, ""

    def warm(self, function_name: str) -> float | None:
        """Start a worker for this function ahead of its first invocation; its init time in ms."""
        from moto.awslambda.models import lambda_backends

        for backend in _backends(lambda_backends):
            for fn in backend.list_functions():
                if fn.function_name == function_name:
                    return self._pool(function_name).warm(self.config_for(fn))
        raise KeyError(function_name)

    def install(self) -> None:
        from moto.awslambda.models import LambdaFunction

        runtime = self
        self._original = LambdaFunction._invoke_lambda

        def _invoke_lambda(fn, event=None):
            return runtime.invoke(fn, event if event is not None else {})

        LambdaFunction._invoke_lambda = _invoke_lambda
        # DynamoDB stream mappings are served by Lambda-like pollers, after the write (streams.py).
        self._streams = StreamDelivery()
        self._streams.install()
        self._reclaimer = threading.Thread(
            target=self._reclaim_idle, name="reclaim-idle-workers", daemon=True
        )
        self._reclaimer.start()

    def _reclaim_idle(self) -> None:
        while not self._stopping.wait(IDLE_RECLAIM_S / 3):
            with self._lock:
                pools = list(self._pools.values())
            for pool in pools:
                pool.reclaim(time.monotonic())

    def close(self) -> None:
        self._stopping.set()
        if self._reclaimer is not None:
            self._reclaimer.join()
            self._reclaimer = None
        if self._streams is not None:
            self._streams.close()
            self._streams = None
        if self._original is not None:
            from moto.awslambda.models import LambdaFunction

            LambdaFunction._invoke_lambda = self._original
            self._original = None
        with self._lock:
            pools = list(self._pools.values())
        threads = [threading.Thread(target=pool.close) for pool in pools]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _backends(backend_dict):
    for account_backends in backend_dict.values():
        yield from account_backends.values()
