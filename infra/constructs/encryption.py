"""The tenant's data key: one customer-managed KMS key for everything the tenant stores; and the key
policy every key of a tenant has (`narrow_policy`), narrower than KMS's account-root default.

The default (`kms:*` for the account root) lets any principal of the account whose IAM policy allows
it use the key directly, from anywhere. Here the account root keeps the key's administration (so the
key is never unmanageable: policy, rotation, deletion, tags, grants' revocation), and its use is
delegated to IAM only through the AWS services the tenant stores with, called by this account's
principals (`kms:ViaService`, `kms:CallerAccount`), or directly by the tenant stack's own roles
(`aws:PrincipalArn` under the stack's name). A principal still needs an identity policy that allows
the action on the key (each function's role names the data key's actions). Service principals that
use a key themselves (CloudWatch Logs, CloudWatch alarms) get a statement of their own, conditioned.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# Administration only: nothing that encrypts, decrypts, or grants (kms:CreateGrant is below, scoped).
ADMIN_ACTIONS = [
    "kms:Describe*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Enable*",
    "kms:Disable*",
    "kms:Revoke*",
    "kms:Delete*",
    "kms:CreateAlias",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
]
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
# The services that encrypt with the data key on a caller's behalf: the table (and its stream), the
# statements bucket, the queues, the tenant secret, the schedules, the state machine's reads.
DATA_SERVICES = ("dynamodb", "s3", "sqs", "secretsmanager", "scheduler", "states")


def _via(services: tuple[str, ...]) -> list[str]:
    return [f"{service}.{Aws.REGION}.amazonaws.com" for service in services]


def narrow_policy(scope: Construct, services: tuple[str, ...]) -> iam.PolicyDocument:
    account = iam.AccountRootPrincipal()
    stack = Stack.of(scope)
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="AccountAdministersTheKey", principals=[account], actions=ADMIN_ACTIONS, resources=["*"]
            ),
            iam.PolicyStatement(
                sid="UseThroughTheTenantsServices",
                principals=[account],
                actions=USE_ACTIONS,
                resources=["*"],
                conditions={
                    "StringEquals": {"kms:CallerAccount": Aws.ACCOUNT_ID, "kms:ViaService": _via(services)}
                },
            ),
            # DynamoDB (and Secrets Manager) hold grants on the key for the resources made with it.
            iam.PolicyStatement(
                sid="GrantsForTheTenantsResources",
                principals=[account],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={
                    "StringEquals": {"kms:CallerAccount": Aws.ACCOUNT_ID, "kms:ViaService": _via(services)},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            ),
            # Roles CloudFormation names after the stack ({stack}-{logical id}-{suffix}): the functions',
            # the state machine's, the schedules'. Nothing of the tenant calls KMS directly today; this
            # keeps a direct call by one of them working, and by nobody else.
            iam.PolicyStatement(
                sid="DirectUseByTheStacksRoles",
                principals=[account],
                actions=USE_ACTIONS,
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "aws:PrincipalArn": f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{stack.stack_name}-*"
                    }
                },
            ),
        ]
    )


class DataKey(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, tenant_name: str) -> None:
        super().__init__(scope, construct_id)
        # Per tenant, so one tenant's data can be cut off (or audited) without touching another's.
        # Retained: deleting the key would make retained tables, backups and statements unreadable.
        self.key = kms.Key(
            self,
            "Key",
            description=f"Coupon clearing data of tenant {tenant_name}: tables, statements, tenant secret",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
            # Replaces the default policy (CDK v2): statements added later (CloudWatch Logs below, the
            # secret's) are appended to it.
            policy=narrow_policy(self, DATA_SERVICES),
        )
        # Every log group of the tenant is encrypted with this key (function logs, access logs, the state
        # machine's): CloudWatch Logs may use it for log groups of this account and region only.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                    }
                },
            )
        )
