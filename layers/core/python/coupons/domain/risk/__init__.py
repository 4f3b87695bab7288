"""Risk control (风控): rules as data, the guards they add to a redemption's one transaction, holds,
code guessing and the anomaly detector. Pure: no boto3, no PynamoDB (docs/risk.md)."""
