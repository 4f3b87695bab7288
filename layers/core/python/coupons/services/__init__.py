"""Use cases: domain rules applied through the stores. Handlers and commands call these."""
