import json
import os

# No test may reach real AWS: fake credentials and a region before anything makes a client.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SECURITY_TOKEN="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="eu-west-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_DEV="false",
    POWERTOOLS_METRICS_NAMESPACE="CouponClearing/test",
)
os.environ.pop("AWS_PROFILE", None)

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Shared, loaded machines: a property is judged by its examples, never by how fast one ran.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


@pytest.fixture(scope="session", autouse=True)
def answers_conform_to_the_openapi_document():
    """The conformance check over every answer this process's tests recorded (tests/conformance.py), at the
    end of the process's session. A fixture's failing teardown is an error xdist reports from its
    workers; an exit status a worker's session sets is not seen by the run (the check never failed one)."""
    yield
    import sys

    from tests import conformance

    meta = sys.modules.get("routes.meta")
    if not conformance.RECORDED or meta is None or os.environ.get("CONFORMANCE") == "off":
        return
    found = conformance.problems_in(json.loads(meta._document()), conformance.RECORDED)
    assert not found, f"Answers that do not conform to the OpenAPI document ({len(found)}):\n  " + "\n  ".join(
        found
    )
