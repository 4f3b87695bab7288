"""Reconciliation (对账) and compensation (补偿), the pure part: channel statement files (formats,
parsers, the simulated bank's differences), the matcher that classifies every difference into one
exception, and the compensating action and journal for each. No boto3 here; the run, its stores and
its API wire these (docs/reconciliation.md says what remains)."""
