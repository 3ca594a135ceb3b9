"""Local creators of keys, buckets and tables (KMS, S3, DynamoDB)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_local.creators import (
    Context,
    Created,
    handles,
    json_text,
    pick,
    tag_list,
)

if TYPE_CHECKING:
    from mlops_local.materialize import Materializer


# ---------------------------------------------------------------------------------------------
# KMS
@handles(
    "AWS::KMS::Key",
    "Description",
    "KeyPolicy",
    "KeyUsage",
    "KeySpec",
    "EnableKeyRotation",
    "Enabled",
    "Tags",
    "PendingWindowInDays",
    "MultiRegion",
)
def _kms_key(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    kms = m.client("kms")
    args: dict[str, Any] = pick(p, "Description", "KeyUsage", "KeySpec", "MultiRegion")
    if "KeyPolicy" in p:
        args["Policy"] = json_text(p["KeyPolicy"])
    if p.get("Tags"):
        args["Tags"] = tag_list(p["Tags"], "TagKey", "TagValue")
    meta = kms.create_key(**args)["KeyMetadata"]
    if p.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    if p.get("Enabled") is False:
        kms.disable_key(KeyId=meta["KeyId"])
    return Created(meta["KeyId"], {"Arn": meta["Arn"], "KeyId": meta["KeyId"]})


@handles("AWS::KMS::Alias", "AliasName", "TargetKeyId")
def _kms_alias(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    target = str(p["TargetKeyId"]).rsplit("/", 1)[-1]
    m.client("kms").create_alias(AliasName=p["AliasName"], TargetKeyId=target)
    return Created(p["AliasName"])


# ---------------------------------------------------------------------------------------------
# S3
def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    elif "NoncurrentVersionExpirationInDays" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    transitions = [
        {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
        for t in rule.get("Transitions", [])
        if "TransitionInDays" in t
    ]
    if transitions:
        out["Transitions"] = transitions
    return out


@handles(
    "AWS::S3::Bucket",
    "BucketName",
    "VersioningConfiguration",
    "BucketEncryption",
    "PublicAccessBlockConfiguration",
    "LifecycleConfiguration",
    "CorsConfiguration",
    "NotificationConfiguration",
    "OwnershipControls",
    "Tags",
    "ObjectLockEnabled",
    "ObjectLockConfiguration",
)
def _bucket(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    s3 = m.client("s3")
    name = ctx.name(p.get("BucketName"), max_length=63, lower=True)
    args: dict[str, Any] = {"Bucket": name}
    if m.region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": m.region}
    if p.get("ObjectLockEnabled"):
        args["ObjectLockEnabledForBucket"] = True
    s3.create_bucket(**args)
    if "VersioningConfiguration" in p:
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": p["VersioningConfiguration"]["Status"]}
        )
    if "BucketEncryption" in p:
        rules = []
        for rule in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
            rules.append(pick(rule, "ServerSideEncryptionByDefault", "BucketKeyEnabled"))
            if "ServerSideEncryptionByDefault" in rules[-1]:
                rules[-1]["ApplyServerSideEncryptionByDefault"] = rules[-1].pop("ServerSideEncryptionByDefault")
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if p.get("ObjectLockConfiguration", {}).get("Rule"):  # default retention of every new object version
        lock = p["ObjectLockConfiguration"]
        retention = {k: int(v) if k in ("Days", "Years") else v for k, v in lock["Rule"]["DefaultRetention"].items()}
        s3.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}},
        )
    if "PublicAccessBlockConfiguration" in p:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"])
    if "LifecycleConfiguration" in p:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in p["LifecycleConfiguration"]["Rules"]]},
        )
    if "CorsConfiguration" in p:
        rules = []
        for rule in p["CorsConfiguration"]["CorsRules"]:
            r = pick(rule, "AllowedHeaders", "AllowedMethods", "AllowedOrigins", "ExposedHeaders")
            if "MaxAge" in rule:
                r["MaxAgeSeconds"] = int(rule["MaxAge"])
            rules.append(r)
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
    if "NotificationConfiguration" in p:
        config: dict[str, Any] = {}
        if p["NotificationConfiguration"].get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            config["EventBridgeConfiguration"] = {}
        s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=config)
    if "OwnershipControls" in p:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=p["OwnershipControls"])
    if p.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(p["Tags"])})
    return Created(
        name,
        {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{m.region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{m.region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{m.region}.amazonaws.com",
        },
    )


@handles("AWS::S3::BucketPolicy", "Bucket", "PolicyDocument")
def _bucket_policy(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    # The local endpoint is plain HTTP on loopback: a deny on aws:SecureTransport=false (CDK's
    # enforce_ssl) would refuse every request, so exactly those statements are left out locally.
    # moto ignores condition operators it does not implement (ArnNotLike among them), so a Deny
    # "to everyone but these roles" on aws:PrincipalArn would refuse everyone: left out too (the
    # datasets/ writers' Deny; locally a direct put is recorded as unverified instead).
    document = json.loads(json_text(p["PolicyDocument"]))
    unevaluable = ("aws:SecureTransport", "aws:PrincipalArn")
    statements = document.get("Statement", [])
    kept = [s for s in statements if not any(k in json.dumps(s.get("Condition", {})) for k in unevaluable)]
    dropped = len(document.get("Statement", [])) - len(kept)
    if kept:
        m.client("s3").put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps({**document, "Statement": kept}))
    note = (
        f"{dropped} aws:SecureTransport / aws:PrincipalArn statement(s) not applied (local endpoint is HTTP; "
        "moto cannot evaluate principal conditions)"
        if dropped
        else ""
    )
    return Created(p["Bucket"], detail={"note": note} if note else {})


@handles(
    "Custom::S3BucketNotifications",
    "ServiceToken",
    "BucketName",
    "NotificationConfiguration",
    "Managed",
    "SkipDestinationValidation",
)
def _bucket_notifications(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    # CDK's notifications handler would call exactly this API with exactly this configuration.
    config = dict(p.get("NotificationConfiguration", {}))
    if "EventBridgeConfiguration" in config:
        config["EventBridgeConfiguration"] = {}
    m.client("s3").put_bucket_notification_configuration(Bucket=p["BucketName"], NotificationConfiguration=config)
    return Created(f"{p['BucketName']}-notifications")


# ---------------------------------------------------------------------------------------------
# DynamoDB
def _sse(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    if not spec:
        return None
    out: dict[str, Any] = {"Enabled": bool(spec.get("SSEEnabled", True))}
    if "SSEType" in spec:
        out["SSEType"] = spec["SSEType"]
    if "KMSMasterKeyId" in spec:
        out["KMSMasterKeyId"] = spec["KMSMasterKeyId"]
    return out


def _create_table(
    m: Materializer,
    name: str,
    p: dict[str, Any],
    sse: dict[str, Any] | None,
    pitr: dict[str, Any] | None,
    deletion_protection: Any,
) -> dict[str, Any]:
    ddb = m.client("dynamodb")
    billing = p.get("BillingMode", "PROVISIONED")
    args: dict[str, Any] = {
        "TableName": name,
        "KeySchema": p["KeySchema"],
        "AttributeDefinitions": p["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        args["ProvisionedThroughput"] = p.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        )
    gsis = []
    for gsi in p.get("GlobalSecondaryIndexes", []):
        index = pick(gsi, "IndexName", "KeySchema", "Projection")
        if billing == "PROVISIONED":
            index["ProvisionedThroughput"] = gsi.get("ProvisionedThroughput", args["ProvisionedThroughput"])
        gsis.append(index)
    if gsis:
        args["GlobalSecondaryIndexes"] = gsis
    if p.get("LocalSecondaryIndexes"):
        args["LocalSecondaryIndexes"] = [
            pick(i, "IndexName", "KeySchema", "Projection") for i in p["LocalSecondaryIndexes"]
        ]
    stream = p.get("StreamSpecification")
    if stream and stream.get("StreamViewType"):
        args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    if sse:
        args["SSESpecification"] = sse
    if p.get("TableClass"):
        args["TableClass"] = p["TableClass"]
    if deletion_protection is not None:
        args["DeletionProtectionEnabled"] = bool(deletion_protection)
    if p.get("Tags"):
        args["Tags"] = tag_list(p["Tags"])
    table = ddb.create_table(**args)["TableDescription"]
    if pitr:
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": bool(pitr.get("PointInTimeRecoveryEnabled"))
            },
        )
    ttl = p.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    return {
        "Arn": table["TableArn"],
        "StreamArn": table.get("LatestStreamArn", ""),
        "TableId": table.get("TableId", ""),
    }


@handles(
    "AWS::DynamoDB::Table",
    "TableName",
    "KeySchema",
    "AttributeDefinitions",
    "BillingMode",
    "ProvisionedThroughput",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "StreamSpecification",
    "SSESpecification",
    "PointInTimeRecoverySpecification",
    "TimeToLiveSpecification",
    "TableClass",
    "DeletionProtectionEnabled",
    "Tags",
)
def _table(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    name = ctx.name(p.get("TableName"), max_length=255)
    attrs = _create_table(
        m,
        name,
        p,
        _sse(p.get("SSESpecification")),
        p.get("PointInTimeRecoverySpecification"),
        p.get("DeletionProtectionEnabled"),
    )
    return Created(name, attrs)


@handles(
    "AWS::DynamoDB::GlobalTable",
    "TableName",
    "KeySchema",
    "AttributeDefinitions",
    "BillingMode",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "StreamSpecification",
    "SSESpecification",
    "Replicas",
    "TimeToLiveSpecification",
    "WriteProvisionedThroughputSettings",
)
def _global_table(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    name = ctx.name(p.get("TableName"), max_length=255)
    replica: dict[str, Any] = next((r for r in p.get("Replicas", []) if r.get("Region") in (None, m.region)), {})
    sse = _sse(p.get("SSESpecification"))
    if sse and replica.get("SSESpecification", {}).get("KMSMasterKeyId"):
        sse["KMSMasterKeyId"] = replica["SSESpecification"]["KMSMasterKeyId"]
    if p.get("BillingMode") != "PROVISIONED":
        p = {**p, "BillingMode": "PAY_PER_REQUEST"}
    props = {**p, "Tags": replica.get("Tags", []), "TableClass": replica.get("TableClass")}
    attrs = _create_table(
        m,
        name,
        {k: v for k, v in props.items() if v is not None},
        sse,
        replica.get("PointInTimeRecoverySpecification"),
        replica.get("DeletionProtectionEnabled"),
    )
    return Created(name, attrs)
