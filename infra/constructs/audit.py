"""The audit log (docs/audit.md): the function that appends every table change (from the stream) and
every API call (from a queue the API function sends to) to the log; the asymmetric key that signs its
heads; the scheduled signer; and the write-once bucket (S3 Object Lock, compliance mode) the signed heads
are published to."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from coupons.data.models.audit import MARKER
from coupons.data.schema import MAIN
from infra.constructs.encryption import ADMIN_ACTIONS
from infra.constructs.function import ServiceFunction
from infra.constructs.layers import Layers
from infra.constructs.stream_consumer import BATCH_SIZE, KEY_ACTIONS, RETRY_ATTEMPTS, StreamConsumer
from infra.constructs.table_access import table_statements
from infra.tenants import Tenant

QUEUE_VARIABLE = "AUDIT_QUEUE_URL"  # coupons.api.audit_calls.QUEUE_VARIABLE
SIGNING_KEY_VARIABLE = "AUDIT_SIGNING_KEY_ID"
BUCKET_VARIABLE = "AUDIT_BUCKET"
HEAD_OBJECTS = "heads/*"  # coupons.data.audit_heads.PREFIX
# The API-call queue keeps a message this long if the audit function cannot take it (its references'
# TTL, coupons.services.audit.REF_TTL_SECONDS, is longer than this plus the DLQ's 14 days).
CALLS_RETENTION = Duration.days(4)
SIGNING_SPEC = kms.KeySpec.ECC_NIST_P256
SIGNING_USAGE = kms.KeyUsage.SIGN_VERIFY


def change_filter() -> dict:
    """Every record but those of the audit log's own items (they carry MARKER in either image): the log
    never logs its own appends, and its function is not invoked for them."""
    absent = {MARKER: {"S": [{"exists": False}]}}
    return lambda_.FilterCriteria.filter({"dynamodb": {"NewImage": absent, "OldImage": absent}})


class Audit(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tenant: Tenant,
        layers: Layers,
        table: dynamodb.Table,
        key: kms.IKey,
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stream = StreamConsumer(
            self,
            table=table,
            key=key,
            dlq_reason="This queue is itself the dead-letter queue of the audit function's stream mapping and "
            "of the API-call queue; what lands here is replayed by hand (docs/audit.md).",
        )
        self.dead_letters = self.stream.dead_letters
        # The API function's record of each call; the audit function appends them to the log.
        self.calls = sqs.Queue(
            self, "Calls", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
            data_key_reuse=Duration.minutes(5), enforce_ssl=True, retention_period=CALLS_RETENTION,
            visibility_timeout=Duration.seconds(6 * 60),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=RETRY_ATTEMPTS),
        )  # fmt: skip

        self.handler = ServiceFunction(
            self,
            "Handler",
            tenant=tenant,
            folder="audit",
            description="Audit log: table changes and API calls to the Merkle log",
            layers=layers,
            key=key,
            statements=[
                # Reads heads and references; puts heads, entries and references only
                # (coupons.data.access: "audit").
                *table_statements(table, "audit"),
                *self.stream.reading(),
                iam.PolicyStatement(
                    actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                    resources=[self.calls.queue_arn],
                ),
                self.stream.sending(),
            ],
            environment={MAIN.env_var: table.table_name, "AUDIT_LOG_SHARDS": str(tenant.audit_log_shards)},
            timeout_seconds=60,
            # Per shard log one writer at a time is what keeps appends cheap (no head races); the stream
            # gives one batch per stream shard anyway.
            reserved_concurrency=tenant.clearing_reserved_concurrency,
        )
        self.function = self.handler.function
        # One batch per stream shard at a time: one item's changes are appended in order.
        self.stream_mapping = self.stream.attach(self.function, filters=[change_filter()])
        self.function.add_event_source(
            sources.SqsEventSource(
                self.calls,
                batch_size=BATCH_SIZE,
                max_batching_window=Duration.seconds(1),
                report_batch_item_failures=True,
            )  # fmt: skip
        )

        self.signing_key = self._signing_key(tenant)
        self.bucket = self._bucket(tenant, key, access_logs)
        self.signer = ServiceFunction(
            self,
            "Signer",
            tenant=tenant,
            folder="audit_sign",
            description="Audit log: signs the tree head and publishes it to the write-once bucket",
            layers=layers,
            key=key,
            statements=[
                *table_statements(table, "audit.sign"),
                iam.PolicyStatement(actions=KEY_ACTIONS, resources=[key.key_arn]),
                # The one principal that may sign with the audit key (its key policy says so too).
                iam.PolicyStatement(
                    actions=["kms:Sign", "kms:GetPublicKey"], resources=[self.signing_key.key_arn]
                ),
                iam.PolicyStatement(
                    actions=["s3:PutObject", "s3:GetObject"],
                    resources=[self.bucket.arn_for_objects(HEAD_OBJECTS)],
                ),
                # Without it S3 answers the first run's missing heads/latest.json with 403, not NoSuchKey.
                self._list_heads(),
            ],
            environment={
                MAIN.env_var: table.table_name,
                "AUDIT_LOG_SHARDS": str(tenant.audit_log_shards),
                SIGNING_KEY_VARIABLE: self.signing_key.key_id,
                BUCKET_VARIABLE: self.bucket.bucket_name,
            },
            timeout_seconds=60,
            reserved_concurrency=1,  # heads in time order: one signer at a time
        )
        # The signer's role by its name's pattern (CloudFormation names it {stack}-{logical id}-{suffix}):
        # naming the role itself would make the key and the role depend on each other. The role's own
        # policy names this key: both are needed, and no other role of the account has either.
        stack = Stack.of(self)
        role_id = stack.get_logical_id(self.signer.role.node.default_child)
        self.signer_role_pattern = (
            f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{stack.stack_name}-{role_id[:24]}*"
        )
        Validations.of(self.signer.role).acknowledge(self._heads_acknowledgment("Publishing signed heads"))
        self.signing_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheSignerSigns",
                principals=[iam.AccountRootPrincipal()],
                actions=["kms:Sign"],
                resources=["*"],
                conditions={
                    "ArnLike": {"aws:PrincipalArn": self.signer_role_pattern},
                    "StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_256"},
                },
            )
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Sign and publish the audit log's tree head",
            schedule=events.Schedule.rate(Duration.minutes(tenant.audit_head_minutes)),
            targets=[targets.LambdaFunction(self.signer.function, retry_attempts=2)],
        )

    def _signing_key(self, tenant: Tenant) -> kms.Key:
        # Asymmetric: the private key never leaves KMS; anyone with the public key checks a head.
        # Administered by the account (never usable through that: no kms:Sign for the root), its public
        # key readable by the account's principals (the API serves it, auditors fetch it).
        account = iam.AccountRootPrincipal()
        return kms.Key(
            self,
            "SigningKey",
            description=f"Signs the audit log's tree heads of tenant {tenant.name}",
            key_spec=SIGNING_SPEC,
            key_usage=SIGNING_USAGE,
            removal_policy=RemovalPolicy.RETAIN,
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="AccountAdministersTheKey", principals=[account], actions=ADMIN_ACTIONS,
                        resources=["*"],
                    ),
                    iam.PolicyStatement(
                        sid="AnyoneOfTheAccountVerifies", principals=[account],
                        actions=["kms:GetPublicKey", "kms:Verify", "kms:DescribeKey"], resources=["*"],
                    ),
                ]
            ),
        )  # fmt: skip

    def _bucket(self, tenant: Tenant, key: kms.IKey, access_logs: s3.IBucket) -> s3.Bucket:
        # Object Lock in compliance mode: no one, the account root included, can delete or overwrite a
        # head's version before its retention ends, nor shorten that retention.
        bucket = s3.Bucket(
            self,
            "Heads",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.compliance(
                Duration.days(365 * tenant.audit_retention_years)
            ),
            removal_policy=RemovalPolicy.RETAIN,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="audit/",
        )
        return bucket

    def allow_api(self, function: lambda_.Function, role: iam.IRole) -> None:
        """The API function sends each call's record to the queue and reads the published heads (with
        the public key in them) for GET /v1/audit/entries/{id}: no use of the signing key at all."""
        function.add_environment(QUEUE_VARIABLE, self.calls.queue_url)
        function.add_environment(BUCKET_VARIABLE, self.bucket.bucket_name)
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.calls.queue_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects(HEAD_OBJECTS)]
            )
        )
        role.add_to_principal_policy(self._list_heads())
        Validations.of(role).acknowledge(self._heads_acknowledgment("Reading the published signed heads"))

    def _list_heads(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [HEAD_OBJECTS]}},
        )  # fmt: skip

    def _heads_acknowledgment(self, what: str) -> Acknowledgment:
        bucket_id = Stack.of(self).get_logical_id(self.bucket.node.default_child)
        return Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{HEAD_OBJECTS}]",
            reason=f"{what}: one object per head under heads/, and nothing else of the audit bucket.",
        )
