"""Shared code of every function: pure domain rules, data access, API plumbing (the core layer)."""
