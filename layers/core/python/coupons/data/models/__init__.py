"""The PynamoDB models of every table: the schema defined once (coupons.data.schema derives the CDK table
and the tests' tables from them). base.py holds the single-table base; one module per entity family."""
