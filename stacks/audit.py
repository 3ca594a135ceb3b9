"""The audit trail's anchor outside the tables: a signing key, a locked digest bucket, the digest function.

:class:`AuditAnchor` (stateful stack) holds an asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY) and
an S3 bucket under Object Lock (versioned; default retention in the configured mode and days).
:class:`AuditDigester` (platform stack) is a function on a schedule that reads the audit and
registry tables (read only) and writes one signed digest of every chain's head per run
(:mod:`mlops.registry.digest`). It is the only principal with ``kms:Sign`` on the key and
``s3:PutObject`` on the bucket: besides the grants, the key policy denies ``kms:Sign`` and the
bucket policy denies ``s3:PutObject`` to every principal but its role, which has a fixed name so
the stateful stack can name it without referring to the platform stack (which refers to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops.contracts.names import DIGEST_PREFIX
from stacks.config import EnvironmentConfig
from stacks.function import MlopsFunction
from stacks.layers import PlatformLayers
from stacks.nag import acknowledge, acknowledge_grant_wildcards, skip_checkov

if TYPE_CHECKING:  # stacks.stateful builds AuditAnchor: importing it here at run time would be circular
    from stacks.stateful import RegistryTables


def digest_role_name(config: EnvironmentConfig) -> str:
    """``mlops-<env>-audit-digest``: the digest function's role, the one signer and writer of digests."""
    return f"mlops-{config.name}-audit-digest"


class AuditAnchor(Construct):
    """The signing key and the Object Lock bucket the audit digests live in (stateful)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, log_bucket: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        removal = RemovalPolicy.DESTROY if config.is_dev else RemovalPolicy.RETAIN
        self.signer_role_arn = stack.format_arn(
            service="iam",
            region="",
            resource="role",
            resource_name=digest_role_name(config),
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        only_the_digest_role = {"ArnNotEquals": {"aws:PrincipalArn": self.signer_role_arn}}

        self.signing_key = kms.Key(
            self,
            "SigningKey",
            key_spec=kms.KeySpec.ECC_NIST_P256,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            description=f"MLOps {config.name}: signs the audit trail's digests (only the digest function signs)",
            alias=f"alias/mlops-{config.name}-audit-signing",
            removal_policy=removal,
        )
        # An identity policy cannot grant past an explicit Deny: changing who signs needs a change
        # of this key policy (kms:PutKeyPolicy), which no platform role holds.
        self.signing_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheDigestFunctionSigns",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["kms:Sign"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions=only_the_digest_role,
            )
        )
        skip_checkov(
            self.signing_key,
            "CKV_AWS_7",
            "An asymmetric signing key (ECC_NIST_P256, SIGN_VERIFY): KMS rotates only symmetric "
            "encryption keys; rotating this one would also orphan the public key old digests verify with.",
            types=["AWS::KMS::Key"],
        )

        retention = Duration.days(config.audit_digest_retention_days)
        if config.audit_digest_lock_mode == "COMPLIANCE":
            default_retention = s3.ObjectLockRetention.compliance(retention)
        else:
            default_retention = s3.ObjectLockRetention.governance(retention)
        self.bucket = s3.Bucket(
            self,
            "Digests",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_lock_enabled=True,
            object_lock_default_retention=default_retention,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=log_bucket,
            server_access_logs_prefix="audit-digests/",
            # Locked objects cannot be deleted before their retention ends, so neither can the bucket.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheDigestFunctionWrites",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions=only_the_digest_role,
            )
        )


class AuditDigester(Construct):
    """The scheduled function that writes the signed digests (stateless)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        layers: PlatformLayers,
        data_bucket: s3.IBucket,
        tables: RegistryTables,
        anchor: AuditAnchor,
    ) -> None:
        super().__init__(scope, construct_id)
        from stacks.stateful import resource_environment

        every = Duration.minutes(config.audit_digest_minutes)
        dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the digest schedule."
        )
        skip_checkov(
            dead_letters,
            "CKV_AWS_27",
            "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which this check does not "
            "recognize; a customer key would also need EventBridge and Lambda grants in the key policy.",
            types=["AWS::SQS::Queue"],
        )
        made = MlopsFunction(
            self,
            "Function",
            name="audit_digest",
            config=config,
            key=tables.key,
            kind="trigger",
            dead_letter_queue=dead_letters,
            layers=[layers.shared, layers.runtime],
            description="Writes a signed digest of every audit chain's head to the Object Lock bucket",
            environment={
                **resource_environment(data_bucket, tables),
                "AUDIT_DIGEST_BUCKET": anchor.bucket.bucket_name,
                "AUDIT_SIGNING_KEY_ARN": anchor.signing_key.key_arn,
            },
            memory_size=512,
            timeout=Duration.minutes(5),
        )
        self.function: lambda_.Function = made.function
        # The ``service`` dimension of its AuditChainsRefused / AuditDigestFailed metrics (the alarm's).
        self.service_name = made.service_name
        role = made.role.node.default_child
        assert isinstance(role, iam.CfnRole)
        role.role_name = digest_role_name(config)  # the key and bucket policies name it
        fn = self.function
        tables.registry.grant_read_data(fn)  # the chains' anchors (listing the chains)
        tables.audit.grant_read_data(fn)
        anchor.bucket.grant_read(fn, f"{DIGEST_PREFIX}*")  # the previous digest
        digests = anchor.bucket.arn_for_objects(f"{DIGEST_PREFIX}*")
        fn.add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[digests]))
        anchor.signing_key.grant(fn, "kms:Sign", "kms:Verify")
        acknowledge_grant_wildcards(
            fn,
            "read the registry and audit tables, read digests/* and put new objects under it in the digest "
            "bucket, sign and verify with the audit signing key",
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            description=f"Every {config.audit_digest_minutes} minutes: a signed digest of the audit chains' heads",
            schedule=events.Schedule.rate(every),
            targets=[
                targets.LambdaFunction(
                    fn, dead_letter_queue=dead_letters, retry_attempts=2, max_event_age=Duration.minutes(60)
                )
            ],
        )
