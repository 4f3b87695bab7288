"""moto as a server thread inside this process, so that its in-process settings (Lambda routing, Step
Functions execution) apply to every request it serves, whoever sends it."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_REGION = "us-east-1"

# What every boto3 client made here or in a worker uses: moto accepts any credentials, and fake ones keep
# a developer's real profile out of reach.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass
class MotoServer:
    server: object
    endpoint: str
    port: int
    region: str

    def stop(self) -> None:
        self.server.stop()


def aws_env(endpoint: str, region: str) -> dict[str, str]:
    """The environment a boto3 client needs to talk to this moto and nothing else."""
    return {
        **FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": endpoint,
        # A stray ~/.aws/config profile must not add a role, SSO or another endpoint.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def start(region: str = DEFAULT_REGION, port: int = 0) -> MotoServer:
    """Start moto on 127.0.0.1 (port 0: a free one) and point this process's boto3 at it."""
    from moto.core.config import default_user_config
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from infra.local import moto_fixes

    moto_fixes.apply()

    # Server mode reads this dict, not a mock_aws(config=...): set before the first request.
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    # Docker mode stays on: its invocation path (_invoke_lambda) is the one runtime.py replaces.
    default_user_config["lambda"]["use_docker"] = True

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound_port = server.get_host_and_port()
    endpoint = f"http://127.0.0.1:{bound_port}"

    os.environ.update(aws_env(endpoint, region))
    # moto's Step Functions Lambda tasks call http://localhost:$MOTO_PORT (moto.settings.moto_server_port).
    os.environ["MOTO_PORT"] = str(bound_port)
    return MotoServer(server=server, endpoint=endpoint, port=bound_port, region=region)
