"""Intent of the stateful stack: encrypted, versioned, TLS-only, recoverable, protected outside dev."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infra.conftest import Synthesized


def test_key_rotates(synthesized: Synthesized) -> None:
    synthesized.template("dev", "stateful").has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_data_bucket_is_versioned_kms_encrypted_private_and_logged(synthesized: Synthesized) -> None:
    # GIVEN the dev stateful stack  WHEN synthesized  THEN the data bucket has every safeguard
    synthesized.template("dev", "stateful").has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like(
                        {
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": Match.any_value(),
                            },
                            "BucketKeyEnabled": True,
                        }
                    )
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "data-bucket/"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like({"NoncurrentVersionExpiration": {"NoncurrentDays": 90}, "Status": "Enabled"}),
                        Match.object_like({"Prefix": "captures/", "ExpirationInDays": 30, "Status": "Enabled"}),
                    ]
                )
            },
        },
    )


def test_buckets_refuse_plain_http(synthesized: Synthesized) -> None:
    policies = synthesized.template("dev", "stateful").find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 3  # the data bucket, the access-log bucket and the audit digest bucket
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_uploads_reach_eventbridge(synthesized: Synthesized) -> None:
    synthesized.template("dev", "stateful").has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "NotificationConfiguration": {"EventBridgeConfiguration": {}},
        },
    )


def test_tables_are_on_demand_recoverable_and_kms_encrypted(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "stateful")
    tables = template.find_resources("AWS::DynamoDB::Table")
    assert len(tables) == 2
    for table in tables.values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["SSESpecification"]["SSEType"] == "KMS"


def test_registry_and_audit_key_schemas(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "stateful")
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [Match.object_like({"IndexName": "gsi1"})],
        },
    )
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}],
            "AttributeDefinitions": Match.array_with([{"AttributeName": "seq", "AttributeType": "N"}]),
        },
    )


def test_deletion_protection_only_outside_dev(synthesized: Synthesized) -> None:
    # GIVEN dev (removal_policy destroy) and prod (retain)
    for env, protected in (("dev", False), ("prod", True)):
        tables = synthesized.template(env, "stateful").find_resources("AWS::DynamoDB::Table")
        # THEN only prod's tables refuse deletion, and only prod's resources are retained
        assert {t["Properties"]["DeletionProtectionEnabled"] for t in tables.values()} == {protected}
        assert {t["DeletionPolicy"] for t in tables.values()} == {"Retain" if protected else "Delete"}
    assert synthesized.stages["prod"].stateful.termination_protection is True
    assert synthesized.stages["dev"].stateful.termination_protection is False
