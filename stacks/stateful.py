"""The stateful stack: what must outlive any code deployment (key, data, registry, audit)."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.nag import acknowledge, skip_checkov

# Inference captures live under this prefix and expire after capture_retention_days.
CAPTURE_PREFIX = "captures/"
DATASET_PREFIX = "datasets/"
# Imported models (mlops models import): the object's creation starts the import's training run.
IMPORT_PREFIX = "imports/"
# Reports (validation, evaluation, drift) live apart from datasets/: writing one must not start a pipeline.
REPORT_PREFIX = "reports/"
# Model artifacts, model cards and reference profiles.
ARTIFACT_PREFIX = "artifacts/"
# Fixed holdout files (training.split.method: holdout_dataset): read by training, never a trigger.
HOLDOUT_PREFIX = "holdouts/"


# The only principals that may write under datasets/ (the bucket policy denies everyone else):
# the upload API's function, which signs the presigned PUTs it hands to callers after recording who
# they are, and the monitor, which writes retraining datasets. Their roles get these fixed names so
# the stateful stack can name them without referring to the platform stack (which refers to it).
DATASET_WRITERS = ("upload", "retrain")
# Training-code packages (mlops code upload): written only by the code upload API's role.
CODE_PREFIX = "code/"
CODE_WRITER_ROLE = "code-upload"


def code_writer_role_name(config: EnvironmentConfig) -> str:
    """``mlops-<env>-code-upload``: the IAM role name of the only principal that may write ``code/``."""
    return f"mlops-{config.name}-{CODE_WRITER_ROLE}"


def dataset_writer_role_name(config: EnvironmentConfig, writer: str) -> str:
    """``mlops-<env>-<writer>-datasets``: the IAM role name of one of :data:`DATASET_WRITERS`."""
    if writer not in DATASET_WRITERS:
        raise ValueError(f"{writer!r} is not one of {DATASET_WRITERS}")
    return f"mlops-{config.name}-{writer}-datasets"


def name_dataset_writer(role: iam.IRole | None, config: EnvironmentConfig, writer: str) -> None:
    """Give a function's role its fixed dataset-writer name (see :data:`DATASET_WRITERS`)."""
    cfn = role.node.default_child if role is not None else None
    if not isinstance(cfn, iam.CfnRole):
        raise TypeError(f"{writer}: the function has no role this app created")
    cfn.role_name = dataset_writer_role_name(config, writer)


class DataStorage(Construct):
    """The customer-managed key, the data bucket and the bucket its access logs go to."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.DESTROY if config.is_dev else RemovalPolicy.RETAIN
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            removal_policy=removal,
            description=f"MLOps {config.name}: data bucket, tables, topics and logs",
            alias=f"alias/mlops-{config.name}",
        )
        # CloudWatch Logs encrypts every log group of this environment with the key (functions, state
        # machines, API access logs), as AWS documents it: the logs service of this region, and only
        # for log groups of this account whose name starts with the environment's stack prefix
        # (CloudFormation names them <stack name>-<logical id>-<suffix>).
        stack = Stack.of(self)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryption",
                principals=[iam.ServicePrincipal(f"logs.{config.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=f"{config.stage_name}-*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        # Server access logs cannot be delivered to a KMS-encrypted bucket: SSE-S3 here.
        self.log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(365),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
            removal_policy=removal,
        )
        acknowledge(
            self.log_bucket,
            "AwsSolutions-S1",
            "This is the access-log destination bucket; logging it into itself would loop.",
            checkov="CKV_AWS_18",
            checkov_types=["AWS::S3::Bucket"],
        )
        self.bucket = s3.Bucket(
            self,
            "Data",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            event_bridge_enabled=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="data-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(config.noncurrent_version_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                s3.LifecycleRule(
                    id="expire-inference-captures",
                    prefix=CAPTURE_PREFIX,
                    expiration=Duration.days(config.capture_retention_days),
                ),
            ],
            removal_policy=removal,
        )
        # Four-eyes rests on who uploaded a dataset: the upload API records the caller AWS
        # authenticated. A direct PutObject under datasets/ would bypass that record, so it is
        # denied to every principal but the dataset writers' roles (aws:PrincipalArn is the role's
        # ARN for any session of the role). Identity policies cannot grant past an explicit Deny.
        writers = [
            stack.format_arn(
                service="iam",
                region="",
                resource="role",
                resource_name=dataset_writer_role_name(config, w),
                arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            )
            for w in DATASET_WRITERS
        ]
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DatasetsOnlyThroughTheUploadApi",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{DATASET_PREFIX}*")],
                conditions={"ArnNotLike": {"aws:PrincipalArn": writers}},
            )
        )
        # Training code runs with the training role: only the code upload API's role (which records
        # the uploader and the sha256 first) may put a package under code/.
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CodeOnlyThroughTheCodeApi",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{CODE_PREFIX}*")],
                conditions={
                    "ArnNotLike": {
                        "aws:PrincipalArn": stack.format_arn(
                            service="iam",
                            region="",
                            resource="role",
                            resource_name=code_writer_role_name(config),
                            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        # event_bridge_enabled: CDK adds its own notifications handler to the stack, run by
        # CloudFormation at deploy time (a custom resource), never by the platform.
        for handler in Stack.of(self).node.children:
            if handler.node.id.startswith("BucketNotificationsHandler"):
                skip_checkov(
                    handler,
                    ["CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"],
                    "CDK's bucket-notifications handler: CloudFormation invokes it synchronously at deploy "
                    "time only, to turn on EventBridge delivery; it calls only the S3 API, so it needs no "
                    "VPC, no dead-letter queue and no reserved capacity.",
                    types=["AWS::Lambda::Function"],
                )


class RegistryTables(Construct):
    """The model registry table and the append-only, hash-chained audit table."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.key = key  # the environment's customer-managed key: tables, and every function's logs and variables
        removal = RemovalPolicy.DESTROY if config.is_dev else RemovalPolicy.RETAIN
        common: dict[str, Any] = {
            "billing_mode": dynamodb.BillingMode.PAY_PER_REQUEST,
            "encryption": dynamodb.TableEncryption.CUSTOMER_MANAGED,
            "encryption_key": key,
            "point_in_time_recovery_specification": dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            "deletion_protection": not config.is_dev,
            "removal_policy": removal,
        }
        self.registry = dynamodb.Table(
            self,
            "Registry",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            **common,
        )
        self.registry.add_global_secondary_index(
            index_name="gsi1",
            partition_key=dynamodb.Attribute(name="gsi1pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="gsi1sk", type=dynamodb.AttributeType.STRING),
        )
        self.audit = dynamodb.Table(
            self,
            "Audit",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="seq", type=dynamodb.AttributeType.NUMBER),
            **common,
        )

    def grant_audit_append(self, grantee: iam.IGrantable) -> None:
        """Append and read audit events; never update or delete one (the chain is append-only)."""
        self.audit.grant(grantee, "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:DescribeTable")

    def grant_registry_write(self, grantee: iam.IGrantable) -> None:
        self.registry.grant_read_write_data(grantee)
        self.grant_audit_append(grantee)


def resource_environment(bucket: s3.IBucket, tables: RegistryTables) -> dict[str, str]:
    """The variables :meth:`mlops.settings.Platform.from_env` reads, for every platform function."""
    return {
        "DATA_BUCKET": bucket.bucket_name,
        "REGISTRY_TABLE": tables.registry.table_name,
        "AUDIT_TABLE": tables.audit.table_name,
    }


class StatefulStack(Stack):
    """Resources whose data must survive any redeploy of the stateless stacks."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.storage = DataStorage(self, "Storage", config=config)
        self.tables = RegistryTables(self, "Tables", config=config, key=self.storage.key)
        # The audit chains' heads, signed, under Object Lock: an anchor no platform role can move.
        from stacks.audit import AuditAnchor  # it builds on this module

        self.audit_anchor = AuditAnchor(self, "AuditAnchor", config=config, log_bucket=self.storage.log_bucket)
