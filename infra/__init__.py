"""The CDK app: one stack per tenant, composed from one construct per capability."""

from pathlib import Path

# Asset paths are resolved from here, so synthesis does not depend on the working directory.
REPO_ROOT = Path(__file__).resolve().parent.parent
