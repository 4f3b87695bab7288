"""Pure business rules: no boto3, no powertools, no I/O."""
