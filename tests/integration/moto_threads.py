"""Threads against moto in-process (`mock_aws`): its backends are not thread-safe (a transaction deep-copies
the table while another thread changes it: "dictionary changed size during iteration"), so concurrency
tests send their requests through OneRequestAtATime. The local stack's moto server is threaded and needs
no such help; the e2e tests race over HTTP there."""

from __future__ import annotations

import threading


class OneRequestAtATime:
    """A client that lets one request into moto at a time (a moto transaction deep-copies the table,
    which another thread must not change meanwhile). Requests of different threads still interleave
    freely, as on DynamoDB, where each request, and each transaction, is atomic."""

    def __init__(self, client):
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute  # `exceptions`

        def call(*args, **kwargs):
            with self._lock:
                return attribute(*args, **kwargs)

        return call
