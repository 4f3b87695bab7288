"""API plumbing shared by the API function: problems (RFC 9457), principals, idempotency."""
