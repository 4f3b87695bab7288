"""moto as `make local` runs it (a server thread, its fixes applied), for tests of the local stack's parts;
the process's environment and moto's settings are put back afterwards, so the other integration tests of
the worker (mock_aws in-process) see nothing of it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from infra.local import moto_server


@contextmanager
def local_moto(region: str) -> Iterator[moto_server.MotoServer]:
    from moto.core.config import default_user_config

    saved_env = dict(os.environ)
    saved_config = {name: dict(default_user_config[name]) for name in ("stepfunctions", "lambda")}
    server = moto_server.start(region=region)
    try:
        yield server
    finally:
        server.stop()
        for name, values in saved_config.items():
            default_user_config[name].clear()
            default_user_config[name].update(values)
        os.environ.clear()
        os.environ.update(saved_env)
