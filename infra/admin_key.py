"""The first admin key of a deployed tenant (every later key is made through POST /v1/api-keys).

    python -m infra.admin_key --tenant demo [--region eu-west-1] [--description "..."]

Finds the tenant stack's table from its outputs, stores the new key's hash and prints the plain key
once. Uses the usual AWS credentials of the shell (or AWS_ENDPOINT_URL for the local stack).
"""

from __future__ import annotations

import argparse
import sys

from coupons.data.api_keys import ApiKeyStore
from coupons.domain.principals import Principal, Role
from coupons.services.api_keys import create_key

CREATED_BY = "bootstrap:infra.admin_key"


def create_admin_key(table_name: str, *, description: str, dynamodb_client=None) -> str:
    if dynamodb_client is None:
        import boto3

        dynamodb_client = boto3.client("dynamodb")
    answer = create_key(
        ApiKeyStore(dynamodb_client, table_name),
        principal=Principal(Role.ADMIN),
        description=description,
        created_by=CREATED_BY,
    )
    return answer["api_key"]


def table_of(stack_name: str, cloudformation_client) -> str:
    stack = cloudformation_client.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return outputs["MainTableName"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--region")
    parser.add_argument("--description", default="first admin key")
    args = parser.parse_args(argv)

    import boto3

    session = boto3.session.Session(region_name=args.region)
    table = table_of(f"CouponClearing-{args.tenant}", session.client("cloudformation"))
    key = create_admin_key(table, description=args.description, dynamodb_client=session.client("dynamodb"))
    print(f"admin key for tenant {args.tenant} (shown once, store it now):", file=sys.stderr)
    print(key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
