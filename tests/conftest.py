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

from hypothesis import HealthCheck, settings  # noqa: E402

# Shared, loaded machines: a property is judged by its examples, never by how fast one ran.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


def pytest_sessionfinish(session, exitstatus):
    """The conformance check over every answer this process's tests recorded (tests/conformance.py)."""
    import sys

    from tests import conformance

    meta = sys.modules.get("routes.meta")
    if not conformance.RECORDED or meta is None or os.environ.get("CONFORMANCE") == "off":
        return
    doc = json.loads(meta._document())
    found = conformance.problems_in(doc, conformance.RECORDED)
    if found:
        report = "\n  ".join(found)
        session.config.get_terminal_writer().line(
            f"\nAnswers that do not conform to the OpenAPI document ({len(found)}):\n  {report}", red=True
        )
        session.exitstatus = 1
