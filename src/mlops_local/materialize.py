"""Create a synthesized stack's resources through the local service APIs, in dependency order.

Why not moto's CloudFormation: it silently drops bucket policies, versioning, layers and the S3
notification custom resource. Creating each resource through its own API keeps every property
visible, and each type the local cloud cannot create is reported by name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import string
import sysconfig
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from mlops.errors import MlopsError
from mlops_local.assembly import Stack
from mlops_local.intrinsics import Resolver, TemplateError, references
from mlops_local.runtime import FunctionSpec, LambdaRuntime


class MaterializeError(MlopsError):
    """A resource of the template could not be created locally (names stack, resource and cause)."""


# Resource types without local meaning; created nowhere, listed at start-up.
NO_LOCAL_MEANING = {
    "AWS::CDK::Metadata": "CDK version reporting",
    "AWS::ApiGateway::Account": "account-wide CloudWatch role of API Gateway",
}
_ALPHABET = string.ascii_uppercase + string.digits


def physical_name(stack: str, logical: str, *, max_length: int = 64, lower: bool = False, suffix: str = "") -> str:
    """A CloudFormation-style generated name ``<stack>-<logical>-<SUFFIX>``, stable across restarts."""
    digest = int(hashlib.sha256(f"{stack}/{logical}".encode()).hexdigest(), 16)
    rand = ""
    for _ in range(12):
        digest, index = divmod(digest, len(_ALPHABET))
        rand += _ALPHABET[index]
    room = max_length - len(rand) - 2 - len(suffix)
    stack_part = stack[: max(1, room // 2)] if len(stack) + len(logical) > room else stack
    logical_part = logical[: max(1, room - len(stack_part))]
    name = f"{stack_part}-{logical_part}-{rand}{suffix}"
    return name.lower() if lower else name


class _AnyAttribute(dict[str, Any]):
    """Attributes of a resource that is not emulated: every name has a placeholder value."""

    def __init__(self, stand_in: str) -> None:
        super().__init__()
        self.stand_in = stand_in

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return f"{self.stand_in}/{key}"


@dataclass
class Created:
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    physical_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)  # what the local cloud derived (for checks)


@dataclass
class ResourceRecord:
    """One template resource and what the local cloud did with it."""

    stack: str
    logical_id: str
    type: str
    status: str  # "created", "not_emulated", "skipped" (its Condition is false)
    physical_id: str = ""
    properties: dict[str, Any] = field(default_factory=dict)  # resolved, as created
    ignored_properties: list[str] = field(default_factory=list)
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Deployment:
    """Everything created, by stack, with the exports and outputs other stacks and callers use."""

    records: list[ResourceRecord] = field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # stack -> output -> value
    exports: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def find(self, type_: str | None = None, stack: str | None = None) -> list[ResourceRecord]:
        return [
            r
            for r in self.records
            if (type_ is None or r.type == type_) and (stack is None or r.stack == stack) and r.status == "created"
        ]

    def emulated_types(self) -> list[str]:
        return sorted({r.type for r in self.records if r.status == "created"})

    def not_emulated_types(self) -> list[str]:
        return sorted({r.type for r in self.records if r.status == "not_emulated"})


Handler = Callable[["Materializer", "_Ctx", dict[str, Any]], Created]
HANDLERS: dict[str, tuple[Handler, frozenset[str]]] = {}


def handles(type_: str, *props: str) -> Callable[[Handler], Handler]:
    """Register a creator for ``type_``; ``props`` are the properties it honours (others are reported)."""

    def register(func: Handler) -> Handler:
        HANDLERS[type_] = (func, frozenset(props))
        return func

    return register


@dataclass
class _Ctx:
    stack: Stack
    logical_id: str
    type: str
    resolver: Resolver

    def name(self, given: Any, **kwargs: Any) -> str:
        return str(given) if given else physical_name(self.stack.name, self.logical_id, **kwargs)


def _tags(tags: Any, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    if isinstance(tags, dict):
        return [{key: k, value: str(v)} for k, v in tags.items()]
    return [{key: t["Key"], value: str(t["Value"])} for t in tags or []]


def _json(doc: Any) -> str:
    return doc if isinstance(doc, str) else json.dumps(doc)


def _pick(props: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: props[n] for n in names if n in props}


class Materializer:
    """Creates the resources of stacks against the local endpoint.

    Parameters
    ----------
    session
        A boto3 session whose clients reach the local cloud (``endpoint_url`` is passed explicitly).
    runtime
        Functions are registered here so that invocations run their handler code.
    work_dir
        Scratch directory (inline function code, unpacked zip assets).
    rewrite
        Applied to resolved strings (turns deployed API URLs into local ones).
    """

    def __init__(
        self,
        *,
        session: boto3.session.Session,
        endpoint_url: str,
        region: str,
        account: str,
        runtime: LambdaRuntime,
        work_dir: Path,
        rewrite: Callable[[str], str] | None = None,
    ) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self.region = region
        self.account = account
        self.runtime = runtime
        self.work_dir = work_dir
        self.rewrite = rewrite
        self._clients: dict[str, Any] = {}
        self.layer_dirs: dict[str, Path] = {}  # layer version ARN -> directory holding python/
        self.foreign_layers: set[str] = set()  # layers built for another platform (not on sys.path)
        self.deployment = Deployment()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint_url, region_name=self.region
            )
        return self._clients[service]

    # -- driving ----------------------------------------------------------------------------
    def deploy(self, stacks: list[Stack]) -> Deployment:
        """Create every stack in order; return what was created."""
        for stack in stacks:
            self.deploy_stack(stack)
        return self.deployment

    def deploy_stack(self, stack: Stack) -> None:
        refs: dict[str, Any] = {}
        attributes: dict[str, dict[str, Any]] = {}
        resolver = Resolver(
            stack_name=stack.name,
            region=self.region,
            account=self.account,
            template=stack.template,
            refs=refs,
            attributes=attributes,
            exports=self.deployment.exports,
            stack_outputs=self.deployment.outputs,
            rewrite=self.rewrite,
        )
        resources = stack.resources
        for logical_id in _dependency_order(stack.name, resources):
            resource = resources[logical_id]
            type_ = resource.get("Type", "")
            record = ResourceRecord(stack=stack.name, logical_id=logical_id, type=type_, status="created")
            condition = resource.get("Condition")
            if condition and not resolver.condition(condition):
                record.status = "skipped"
                record.note = f"condition {condition} is false"
                self.deployment.records.append(record)
                continue
            handler = HANDLERS.get(type_)
            if type_.startswith("Custom::") and type_ not in HANDLERS:
                handler = None
            if handler is None:
                record.status = "not_emulated"
                record.physical_id = physical_name(stack.name, logical_id)
                record.note = NO_LOCAL_MEANING.get(type_, "no local emulation for this type")
                refs[logical_id] = record.physical_id
                attributes[logical_id] = _AnyAttribute(
                    f"arn:aws:local:{self.region}:{self.account}:{type_.replace('::', '-').lower()}/"
                    f"{record.physical_id}"
                )
                self.deployment.records.append(record)
                continue
            func, honoured = handler
            try:
                props = resolver.resolve(resource.get("Properties", {}), f"{logical_id} ({type_})")
                created = func(self, _Ctx(stack, logical_id, type_, resolver), props)
            except TemplateError:
                raise
            except (ClientError, MlopsError, OSError, KeyError, ValueError) as exc:
                raise MaterializeError(
                    f"stack {stack.name}, resource {logical_id} ({type_}): could not create it locally: {exc}"
                ) from exc
            refs[logical_id] = created.ref
            attributes[logical_id] = created.attributes
            record.physical_id = created.physical_id or str(created.ref)
            record.properties = props
            record.ignored_properties = sorted(k for k in props if k not in honoured)
            record.detail = created.detail
            record.note = str(created.detail.get("note", ""))
            self.deployment.records.append(record)
        outputs: dict[str, Any] = {}
        for name, output in stack.template.get("Outputs", {}).items():
            if output.get("Condition") and not resolver.condition(output["Condition"]):
                continue
            value = resolver.resolve(output.get("Value"), f"output {name}")
            outputs[name] = value
            if "Export" in output:
                self.deployment.exports[resolver.resolve(output["Export"]["Name"], f"output {name}")] = value
        self.deployment.outputs[stack.name] = outputs

    # -- code and assets ----------------------------------------------------------------------
    def asset_dir(self, ctx: _Ctx, location: dict[str, Any], what: str) -> Path:
        key = location.get("S3Key")
        asset = ctx.stack.asset_for_key(str(key)) if key else None
        if asset is None:
            raise MaterializeError(
                f"stack {ctx.stack.name}, resource {ctx.logical_id}: {what} asset "
                f"s3://{location.get('S3Bucket')}/{key} is not in the assembly's asset manifest"
            )
        if asset.path.is_dir():
            return asset.path
        if not asset.path.is_file():
            raise MaterializeError(
                f"stack {ctx.stack.name}, resource {ctx.logical_id}: {what} asset {asset.path} "
                "is missing (run the synth again)"
            )
        target = self.work_dir / "assets" / asset.asset_id
        if not target.exists():
            with zipfile.ZipFile(asset.path) as archive:
                archive.extractall(target)
        return target


def _dependency_order(stack: str, resources: dict[str, dict[str, Any]]) -> list[str]:
    deps: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        found = references(resource.get("Properties", {})) | references(resource.get("Condition", []))
        depends = resource.get("DependsOn", [])
        found |= {depends} if isinstance(depends, str) else set(depends)
        deps[logical_id] = {d for d in found if d in resources and d != logical_id}
    ordered: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise TemplateError(f"stack {stack}: circular dependency {' -> '.join([*path, node])}")
        state[node] = 1
        for dep in sorted(deps[node]):
            visit(dep, [*path, node])
        state[node] = 2
        ordered.append(node)

    for node in resources:
        visit(node, [])
    return ordered


def _files_in_order(directory: Path) -> Iterator[Path]:
    """The files under ``directory`` in sorted path order, found as they are needed (not all at once)."""
    with os.scandir(directory) as found:
        entries = sorted(found, key=lambda e: e.name)
    for entry in entries:
        if entry.name == "__pycache__":
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _files_in_order(Path(entry.path))
        elif entry.is_file():
            yield Path(entry.path)


def _zip_dir(directory: Path, limit: int = 20 * 1024 * 1024) -> bytes:
    """The directory as a zip (stored, not compressed) for moto's function and layer records.

    The local runtime runs code from the directory itself; the zip only gives the resource its
    code size and hash, so a big tree (a dependency layer) is cut off at ``limit`` bytes without
    walking the rest of it.
    """
    buffer = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in _files_in_order(directory):
            total += path.stat().st_size
            if total > limit:
                break
            archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def _stub_zip(note: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("LOCAL.txt", note)
    return buffer.getvalue()


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
def _kms_key(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    kms = m.client("kms")
    args: dict[str, Any] = _pick(p, "Description", "KeyUsage", "KeySpec", "MultiRegion")
    if "KeyPolicy" in p:
        args["Policy"] = _json(p["KeyPolicy"])
    if p.get("Tags"):
        args["Tags"] = _tags(p["Tags"], "TagKey", "TagValue")
    meta = kms.create_key(**args)["KeyMetadata"]
    if p.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    if p.get("Enabled") is False:
        kms.disable_key(KeyId=meta["KeyId"])
    return Created(meta["KeyId"], {"Arn": meta["Arn"], "KeyId": meta["KeyId"]})


@handles("AWS::KMS::Alias", "AliasName", "TargetKeyId")
def _kms_alias(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
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
def _bucket(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
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
            rules.append(_pick(rule, "ServerSideEncryptionByDefault", "BucketKeyEnabled"))
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
            r = _pick(rule, "AllowedHeaders", "AllowedMethods", "AllowedOrigins", "ExposedHeaders")
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
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(p["Tags"])})
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
def _bucket_policy(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    # The local endpoint is plain HTTP on loopback: a deny on aws:SecureTransport=false (CDK's
    # enforce_ssl) would refuse every request, so exactly those statements are left out locally.
    # moto ignores condition operators it does not implement (ArnNotLike among them), so a Deny
    # "to everyone but these roles" on aws:PrincipalArn would refuse everyone: left out too (the
    # datasets/ writers' Deny; locally a direct put is recorded as unverified instead).
    document = json.loads(_json(p["PolicyDocument"]))
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
def _bucket_notifications(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
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
        index = _pick(gsi, "IndexName", "KeySchema", "Projection")
        if billing == "PROVISIONED":
            index["ProvisionedThroughput"] = gsi.get("ProvisionedThroughput", args["ProvisionedThroughput"])
        gsis.append(index)
    if gsis:
        args["GlobalSecondaryIndexes"] = gsis
    if p.get("LocalSecondaryIndexes"):
        args["LocalSecondaryIndexes"] = [
            _pick(i, "IndexName", "KeySchema", "Projection") for i in p["LocalSecondaryIndexes"]
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
        args["Tags"] = _tags(p["Tags"])
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
def _table(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
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
def _global_table(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
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


# ---------------------------------------------------------------------------------------------
# SSM, logs, SNS, SQS
@handles("AWS::SSM::Parameter", "Name", "Value", "Type", "Description", "Tier", "AllowedPattern", "DataType", "Tags")
def _parameter(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    name = p.get("Name") or f"CFN-{ctx.logical_id}-{physical_name(ctx.stack.name, ctx.logical_id)[-12:]}"
    args: dict[str, Any] = {"Name": name, "Value": str(p["Value"]), "Type": p.get("Type", "String")}
    args.update(_pick(p, "Description", "Tier", "AllowedPattern", "DataType"))
    if p.get("Tags"):
        args["Tags"] = _tags(p["Tags"])
    m.client("ssm").put_parameter(**args)
    return Created(name, {"Type": args["Type"], "Value": args["Value"]})


@handles("AWS::Logs::LogGroup", "LogGroupName", "RetentionInDays", "KmsKeyId", "Tags", "LogGroupClass")
def _log_group(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    logs = m.client("logs")
    name = ctx.name(p.get("LogGroupName"), max_length=512)
    args: dict[str, Any] = {"logGroupName": name}
    if p.get("KmsKeyId"):
        args["kmsKeyId"] = p["KmsKeyId"]
    if p.get("Tags"):
        args["tags"] = {t["Key"]: t["Value"] for t in _tags(p["Tags"])}
    logs.create_log_group(**args)
    if p.get("RetentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
    return Created(name, {"Arn": f"arn:aws:logs:{m.region}:{m.account}:log-group:{name}:*"})


@handles(
    "AWS::SNS::Topic",
    "TopicName",
    "DisplayName",
    "KmsMasterKeyId",
    "FifoTopic",
    "ContentBasedDeduplication",
    "Subscription",
    "Tags",
    "TracingConfig",
)
def _topic(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    sns = m.client("sns")
    fifo = str(p.get("FifoTopic", "")).lower() == "true"
    name = ctx.name(p.get("TopicName"), max_length=256, suffix=".fifo" if fifo else "")
    attributes = {
        k: str(p[k]).lower() if isinstance(p[k], bool) else str(p[k])
        for k in ("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication", "TracingConfig")
        if k in p
    }
    args: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if p.get("Tags"):
        args["Tags"] = _tags(p["Tags"])
    arn = sns.create_topic(**args)["TopicArn"]
    for sub in p.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=sub["Protocol"], Endpoint=sub["Endpoint"])
    return Created(arn, {"TopicArn": arn, "TopicName": name})


@handles(
    "AWS::SNS::Subscription",
    "TopicArn",
    "Protocol",
    "Endpoint",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "Region",
)
def _subscription(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    attributes: dict[str, str] = {}
    for key in ("FilterPolicy", "RedrivePolicy"):
        if key in p:
            attributes[key] = _json(p[key])
    if "FilterPolicyScope" in p:
        attributes["FilterPolicyScope"] = p["FilterPolicyScope"]
    if "RawMessageDelivery" in p:
        attributes["RawMessageDelivery"] = str(p["RawMessageDelivery"]).lower()
    arn = m.client("sns").subscribe(
        TopicArn=p["TopicArn"],
        Protocol=p["Protocol"],
        Endpoint=p.get("Endpoint", ""),
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return Created(arn)


@handles("AWS::SNS::TopicPolicy", "PolicyDocument", "Topics")
def _topic_policy(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    for topic in p["Topics"]:
        m.client("sns").set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=_json(p["PolicyDocument"])
        )
    return Created(physical_name(ctx.stack.name, ctx.logical_id))


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedrivePolicy",
    "RedriveAllowPolicy",
)


@handles("AWS::SQS::Queue", "QueueName", "Tags", *_QUEUE_ATTRIBUTES)
def _queue(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    sqs = m.client("sqs")
    fifo = str(p.get("FifoQueue", "")).lower() == "true"
    name = ctx.name(p.get("QueueName"), max_length=80, suffix=".fifo" if fifo else "")
    attributes = {}
    for key in _QUEUE_ATTRIBUTES:
        if key in p:
            value = p[key]
            attributes[key] = (
                _json(value)
                if isinstance(value, dict)
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
    args: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if p.get("Tags"):
        args["tags"] = {t["Key"]: t["Value"] for t in _tags(p["Tags"])}
    url = sqs.create_queue(**args)["QueueUrl"]
    arn = f"arn:aws:sqs:{m.region}:{m.account}:{name}"
    return Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


@handles("AWS::SQS::QueuePolicy", "PolicyDocument", "Queues")
def _queue_policy(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    for url in p["Queues"]:
        m.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": _json(p["PolicyDocument"])})
    return Created(physical_name(ctx.stack.name, ctx.logical_id))


# ---------------------------------------------------------------------------------------------
# IAM
@handles(
    "AWS::IAM::Role",
    "RoleName",
    "AssumeRolePolicyDocument",
    "Path",
    "Description",
    "MaxSessionDuration",
    "PermissionsBoundary",
    "Policies",
    "ManagedPolicyArns",
    "Tags",
)
def _role(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    iam = m.client("iam")
    name = ctx.name(p.get("RoleName"), max_length=64)
    args: dict[str, Any] = {"RoleName": name, "AssumeRolePolicyDocument": _json(p["AssumeRolePolicyDocument"])}
    args.update(_pick(p, "Path", "Description", "PermissionsBoundary"))
    if "MaxSessionDuration" in p:
        args["MaxSessionDuration"] = int(p["MaxSessionDuration"])
    if p.get("Tags"):
        args["Tags"] = _tags(p["Tags"])
    role = iam.create_role(**args)["Role"]
    for policy in p.get("Policies", []):
        iam.put_role_policy(
            RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=_json(policy["PolicyDocument"])
        )
    for arn in p.get("ManagedPolicyArns", []):
        try:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        except ClientError:
            m.deployment.warnings.append(
                f"{ctx.stack.name}/{ctx.logical_id}: managed policy {arn} is not "
                "loaded locally; the role is created without it (IAM is not enforced)"
            )
    return Created(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})


@handles("AWS::IAM::Policy", "PolicyName", "PolicyDocument", "Roles", "Users", "Groups")
def _policy(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    iam = m.client("iam")
    document = _json(p["PolicyDocument"])
    for role in p.get("Roles", []):
        iam.put_role_policy(RoleName=role, PolicyName=p["PolicyName"], PolicyDocument=document)
    for user in p.get("Users", []):
        iam.put_user_policy(UserName=user, PolicyName=p["PolicyName"], PolicyDocument=document)
    for group in p.get("Groups", []):
        iam.put_group_policy(GroupName=group, PolicyName=p["PolicyName"], PolicyDocument=document)
    return Created(physical_name(ctx.stack.name, ctx.logical_id))


@handles(
    "AWS::IAM::ManagedPolicy", "ManagedPolicyName", "PolicyDocument", "Path", "Description", "Roles", "Users", "Groups"
)
def _managed_policy(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    iam = m.client("iam")
    name = ctx.name(p.get("ManagedPolicyName"), max_length=128)
    args: dict[str, Any] = {"PolicyName": name, "PolicyDocument": _json(p["PolicyDocument"])}
    args.update(_pick(p, "Path", "Description"))
    arn = iam.create_policy(**args)["Policy"]["Arn"]
    for role in p.get("Roles", []):
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    return Created(arn, {"PolicyArn": arn})


# ---------------------------------------------------------------------------------------------
# Lambda
@handles(
    "AWS::Lambda::LayerVersion",
    "LayerName",
    "Content",
    "CompatibleRuntimes",
    "CompatibleArchitectures",
    "Description",
    "LicenseInfo",
)
def _layer(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    directory = m.asset_dir(ctx, p["Content"], "layer")
    name = ctx.name(p.get("LayerName"), max_length=140)
    args: dict[str, Any] = {"LayerName": name, "Content": {"ZipFile": _stub_zip(f"local layer: {directory}")}}
    args.update(_pick(p, "CompatibleRuntimes", "CompatibleArchitectures", "Description", "LicenseInfo"))
    arn = m.client("lambda").publish_layer_version(**args)["LayerVersionArn"]
    foreign = _foreign_extension(directory)
    note = ""
    if foreign is None:
        m.layer_dirs[arn] = directory
    else:  # e.g. an arm64 layer on an x86_64 machine: its compiled modules cannot load here
        m.foreign_layers.add(arn)
        note = (
            f"built for another platform ({foreign}); functions use the local environment's copies "
            "of its packages (the same pinned versions) instead"
        )
        m.deployment.warnings.append(f"{ctx.stack.name}/{ctx.logical_id}: layer {note}")
    return Created(arn, {"LayerVersionArn": arn}, detail={"note": note} if note else {})


def _foreign_extension(directory: Path) -> str | None:
    """The first compiled module in ``directory`` this interpreter cannot load, if any."""
    own = sysconfig.get_config_var("EXT_SUFFIX") or ""
    for path in (directory / "python").rglob("*.cpython-*.so"):
        suffix = "." + path.name.split(".", 1)[1]
        if suffix != own:
            return path.name
    return None


@handles(
    "AWS::Lambda::Function",
    "FunctionName",
    "Code",
    "Handler",
    "Runtime",
    "Role",
    "Environment",
    "Timeout",
    "MemorySize",
    "Layers",
    "Description",
    "Architectures",
    "Tags",
    "TracingConfig",
    "LoggingConfig",
    "DeadLetterConfig",
    "EphemeralStorage",
    "ReservedConcurrentExecutions",
)
def _function(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    name = ctx.name(p.get("FunctionName"), max_length=64)
    code = p["Code"]
    handler = p.get("Handler", "index.handler")
    runtime = p.get("Runtime", "")
    if "ImageUri" in code:
        raise MaterializeError(
            f"stack {ctx.stack.name}, function {ctx.logical_id}: container images cannot run locally"
        )
    if not str(runtime).startswith("python"):
        m.deployment.warnings.append(
            f"{ctx.stack.name}/{ctx.logical_id}: runtime {runtime} cannot run locally "
            "(only Python handlers run); invoking it returns an error"
        )
    if "ZipFile" in code:  # inline code: CloudFormation writes it to index.py
        code_dir = m.work_dir / "inline" / name
        code_dir.mkdir(parents=True, exist_ok=True)
        module = handler.rpartition(".")[0] or "index"
        (code_dir / f"{module}.py").write_text(code["ZipFile"])
    else:
        code_dir = m.asset_dir(ctx, code, "function code")
    environment = {k: str(v) for k, v in p.get("Environment", {}).get("Variables", {}).items()}
    args: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": runtime or "python3.12",
        "Role": p["Role"],
        "Handler": handler,
        "Code": {"ZipFile": _zip_dir(code_dir)},
        "Timeout": int(p.get("Timeout", 3)),
        "MemorySize": int(p.get("MemorySize", 128)),
        "Environment": {"Variables": environment},
        "Layers": list(p.get("Layers", [])),
    }
    args.update(
        _pick(
            p, "Description", "Architectures", "TracingConfig", "LoggingConfig", "DeadLetterConfig", "EphemeralStorage"
        )
    )
    if p.get("Tags"):
        args["Tags"] = {t["Key"]: t["Value"] for t in _tags(p["Tags"])}
    arn = m.client("lambda").create_function(**args)["FunctionArn"]
    missing = [layer for layer in args["Layers"] if layer not in m.layer_dirs and layer not in m.foreign_layers]
    if missing:
        m.deployment.warnings.append(
            f"{ctx.stack.name}/{ctx.logical_id}: layers {missing} are not from this "
            "assembly; their code is not on the function's path"
        )
    m.runtime.register(
        FunctionSpec(
            name=name,
            arn=arn,
            handler=handler,
            code_dir=code_dir,
            layer_dirs=[m.layer_dirs[layer] for layer in args["Layers"] if layer in m.layer_dirs],
            environment=environment,
            timeout=args["Timeout"],
            memory=args["MemorySize"],
            runtime=args["Runtime"],
            dead_letter_arn=p.get("DeadLetterConfig", {}).get("TargetArn"),
        )
    )
    return Created(name, {"Arn": arn})


@handles(
    "AWS::Lambda::Permission",
    "FunctionName",
    "Action",
    "Principal",
    "SourceArn",
    "SourceAccount",
    "EventSourceToken",
    "PrincipalOrgID",
    "FunctionUrlAuthType",
)
def _permission(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    args: dict[str, Any] = {
        "FunctionName": p["FunctionName"],
        "StatementId": ctx.logical_id,
        "Action": p["Action"],
        "Principal": p["Principal"],
    }
    args.update(_pick(p, "SourceArn", "SourceAccount", "EventSourceToken", "PrincipalOrgID", "FunctionUrlAuthType"))
    m.client("lambda").add_permission(**args)
    return Created(ctx.logical_id)


@handles("AWS::Lambda::Version", "FunctionName", "Description")
def _version(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    out = m.client("lambda").publish_version(FunctionName=p["FunctionName"], Description=p.get("Description", ""))
    return Created(out["FunctionArn"], {"Version": out["Version"]})


@handles("AWS::Lambda::Alias", "FunctionName", "FunctionVersion", "Name", "Description", "RoutingConfig")
def _alias(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    args: dict[str, Any] = {
        "FunctionName": p["FunctionName"],
        "Name": p["Name"],
        "FunctionVersion": str(p["FunctionVersion"]),
    }
    args.update(_pick(p, "Description", "RoutingConfig"))
    arn = m.client("lambda").create_alias(**args)["AliasArn"]
    return Created(arn, {"AliasArn": arn})


# ---------------------------------------------------------------------------------------------
# Step Functions, EventBridge
@handles(
    "AWS::StepFunctions::StateMachine",
    "StateMachineName",
    "DefinitionString",
    "Definition",
    "DefinitionSubstitutions",
    "DefinitionS3Location",
    "RoleArn",
    "StateMachineType",
    "LoggingConfiguration",
    "TracingConfiguration",
    "Tags",
)
def _state_machine(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    if "DefinitionString" in p:
        definition = str(p["DefinitionString"])
    elif "Definition" in p:
        definition = json.dumps(p["Definition"])
    elif "DefinitionS3Location" in p:
        location = p["DefinitionS3Location"]
        asset = ctx.stack.asset_for_key(location.get("Key", ""))
        if asset is None:
            raise MaterializeError(
                f"stack {ctx.stack.name}, {ctx.logical_id}: definition asset "
                f"{location.get('Key')} is not in the asset manifest"
            )
        definition = asset.path.read_text()
    else:
        raise MaterializeError(f"stack {ctx.stack.name}, {ctx.logical_id}: the state machine has no definition")
    for key, value in p.get("DefinitionSubstitutions", {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    name = ctx.name(p.get("StateMachineName"), max_length=80)
    args: dict[str, Any] = {
        "name": name,
        "definition": definition,
        "roleArn": p["RoleArn"],
        "type": p.get("StateMachineType", "STANDARD"),
    }
    if p.get("Tags"):
        args["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in _tags(p["Tags"])]
    arn = m.client("stepfunctions").create_state_machine(**args)["stateMachineArn"]
    return Created(
        arn, {"Arn": arn, "Name": name, "StateMachineRevisionId": "local"}, detail={"definition": definition}
    )


@handles("AWS::Events::EventBus", "Name", "Tags", "Description")
def _event_bus(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    arn = m.client("events").create_event_bus(Name=p["Name"])["EventBusArn"]
    return Created(p["Name"], {"Arn": arn, "Name": p["Name"]})


@handles(
    "AWS::Events::Rule",
    "Name",
    "Description",
    "EventPattern",
    "ScheduleExpression",
    "State",
    "EventBusName",
    "Targets",
    "RoleArn",
)
def _rule(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    events = m.client("events")
    name = ctx.name(p.get("Name"), max_length=64)
    args: dict[str, Any] = {"Name": name, "State": p.get("State", "ENABLED")}
    if "EventPattern" in p:
        args["EventPattern"] = _json(p["EventPattern"])
    args.update(_pick(p, "Description", "ScheduleExpression", "EventBusName", "RoleArn"))
    arn = events.put_rule(**args)["RuleArn"]
    targets = []
    for target in p.get("Targets", []):
        t = _pick(
            target,
            "Id",
            "Arn",
            "RoleArn",
            "Input",
            "InputPath",
            "InputTransformer",
            "RetryPolicy",
            "DeadLetterConfig",
            "SqsParameters",
        )
        if "InputTransformer" in t:
            t["InputTransformer"] = {
                k: (_json(v) if k == "InputPathsMap" and isinstance(v, str) else v)
                for k, v in t["InputTransformer"].items()
            }
        targets.append(t)
    if targets:
        kwargs: dict[str, Any] = {"Rule": name, "Targets": targets}
        if "EventBusName" in p:
            kwargs["EventBusName"] = p["EventBusName"]
        events.put_targets(**kwargs)
    return Created(name, {"Arn": arn})


# ---------------------------------------------------------------------------------------------
# API Gateway (REST)
@handles(
    "AWS::ApiGateway::RestApi",
    "Name",
    "Description",
    "EndpointConfiguration",
    "BinaryMediaTypes",
    "Policy",
    "MinimumCompressionSize",
    "ApiKeySourceType",
    "DisableExecuteApiEndpoint",
    "Tags",
    "CloneFrom",
)
def _rest_api(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    api = m.client("apigateway")
    args: dict[str, Any] = {"name": p.get("Name") or ctx.logical_id}
    if "Description" in p:
        args["description"] = p["Description"]
    if "EndpointConfiguration" in p:
        args["endpointConfiguration"] = {"types": p["EndpointConfiguration"].get("Types", ["EDGE"])}
    if "BinaryMediaTypes" in p:
        args["binaryMediaTypes"] = p["BinaryMediaTypes"]
    if "Policy" in p:
        args["policy"] = _json(p["Policy"])
    if "ApiKeySourceType" in p:
        args["apiKeySource"] = p["ApiKeySourceType"]
    created = api.create_rest_api(**args)
    root = next(r["id"] for r in api.get_resources(restApiId=created["id"])["items"] if r["path"] == "/")
    return Created(created["id"], {"RootResourceId": root, "RestApiId": created["id"]})


@handles("AWS::ApiGateway::Resource", "RestApiId", "ParentId", "PathPart")
def _api_resource(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    out = m.client("apigateway").create_resource(
        restApiId=p["RestApiId"], parentId=p["ParentId"], pathPart=p["PathPart"]
    )
    return Created(out["id"], {"ResourceId": out["id"]})


@handles(
    "AWS::ApiGateway::Method",
    "RestApiId",
    "ResourceId",
    "HttpMethod",
    "AuthorizationType",
    "AuthorizerId",
    "ApiKeyRequired",
    "OperationName",
    "RequestParameters",
    "Integration",
    "MethodResponses",
    "AuthorizationScopes",
    "RequestModels",
    "RequestValidatorId",
)
def _api_method(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    api = m.client("apigateway")
    key = {"restApiId": p["RestApiId"], "resourceId": p["ResourceId"], "httpMethod": p["HttpMethod"]}
    args: dict[str, Any] = {**key, "authorizationType": p.get("AuthorizationType", "NONE")}
    for cfn, boto in (
        ("AuthorizerId", "authorizerId"),
        ("ApiKeyRequired", "apiKeyRequired"),
        ("OperationName", "operationName"),
        ("RequestParameters", "requestParameters"),
        ("AuthorizationScopes", "authorizationScopes"),
    ):
        if cfn in p:
            args[boto] = p[cfn]
    api.put_method(**args)
    integration = p.get("Integration")
    if integration:
        i_args: dict[str, Any] = {**key, "type": integration["Type"]}
        for cfn, boto in (
            ("IntegrationHttpMethod", "integrationHttpMethod"),
            ("Uri", "uri"),
            ("PassthroughBehavior", "passthroughBehavior"),
            ("RequestTemplates", "requestTemplates"),
            ("RequestParameters", "requestParameters"),
            ("TimeoutInMillis", "timeoutInMillis"),
            ("Credentials", "credentials"),
            ("ContentHandling", "contentHandling"),
        ):
            if cfn in integration:
                i_args[boto] = integration[cfn]
        api.put_integration(**i_args)
        for response in integration.get("IntegrationResponses", []):
            r_args: dict[str, Any] = {**key, "statusCode": str(response["StatusCode"])}
            if "ResponseParameters" in response:
                r_args["responseParameters"] = response["ResponseParameters"]
            if "ResponseTemplates" in response:
                r_args["responseTemplates"] = response["ResponseTemplates"]
            api.put_integration_response(**r_args)
    for response in p.get("MethodResponses", []):
        mr: dict[str, Any] = {**key, "statusCode": str(response["StatusCode"])}
        if "ResponseParameters" in response:
            mr["responseParameters"] = {k: bool(v) for k, v in response["ResponseParameters"].items()}
        api.put_method_response(**mr)
    return Created(f"{p['RestApiId']}-{p['ResourceId']}-{p['HttpMethod']}")


@handles("AWS::ApiGateway::RequestValidator", "RestApiId", "Name", "ValidateRequestBody", "ValidateRequestParameters")
def _api_validator(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    out = m.client("apigateway").create_request_validator(
        restApiId=p["RestApiId"],
        name=p.get("Name") or ctx.logical_id,
        validateRequestBody=bool(p.get("ValidateRequestBody", False)),
        validateRequestParameters=bool(p.get("ValidateRequestParameters", False)),
    )
    return Created(
        out["id"],
        {"RequestValidatorId": out["id"]},
        detail={"note": "request validation is recorded, not enforced, locally"},
    )


@handles("AWS::ApiGateway::Deployment", "RestApiId", "Description", "StageName", "StageDescription")
def _api_deployment(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    args: dict[str, Any] = {"restApiId": p["RestApiId"]}
    if "Description" in p:
        args["description"] = p["Description"]
    if "StageName" in p:
        args["stageName"] = p["StageName"]
    out = m.client("apigateway").create_deployment(**args)
    return Created(out["id"], {"DeploymentId": out["id"]})


@handles(
    "AWS::ApiGateway::Stage",
    "RestApiId",
    "StageName",
    "DeploymentId",
    "Description",
    "Variables",
    "TracingEnabled",
    "MethodSettings",
    "AccessLogSetting",
    "Tags",
)
def _api_stage(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    args: dict[str, Any] = {"restApiId": p["RestApiId"], "stageName": p["StageName"], "deploymentId": p["DeploymentId"]}
    if "Description" in p:
        args["description"] = p["Description"]
    if "Variables" in p:
        args["variables"] = p["Variables"]
    if "TracingEnabled" in p:
        args["tracingEnabled"] = bool(p["TracingEnabled"])
    m.client("apigateway").create_stage(**args)
    return Created(p["StageName"])


# ---------------------------------------------------------------------------------------------
# CloudWatch
_ALARM_KEYS = (
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


@handles("AWS::CloudWatch::Alarm", "AlarmName", "Tags", *_ALARM_KEYS)
def _alarm(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    name = ctx.name(p.get("AlarmName"), max_length=255)
    args: dict[str, Any] = {"AlarmName": name, **_pick(p, *_ALARM_KEYS)}
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in args:
            args[key] = int(args[key])
    if "Threshold" in args:
        args["Threshold"] = float(args["Threshold"])
    if "Metrics" in args:
        for metric in args["Metrics"]:
            if "MetricStat" in metric:
                metric["MetricStat"]["Period"] = int(metric["MetricStat"]["Period"])
    m.client("cloudwatch").put_metric_alarm(**args)
    return Created(name, {"Arn": f"arn:aws:cloudwatch:{m.region}:{m.account}:alarm:{name}"})


@handles("AWS::CloudWatch::Dashboard", "DashboardName", "DashboardBody")
def _dashboard(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    name = ctx.name(p.get("DashboardName"), max_length=255)
    m.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=_json(p["DashboardBody"]))
    return Created(name)


@handles("AWS::Scheduler::ScheduleGroup", "Name", "Tags")
def _schedule_group(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    name = ctx.name(p.get("Name"))
    args: dict[str, Any] = {"Name": name}
    if p.get("Tags"):
        args["Tags"] = _tags(p["Tags"])
    arn = m.client("scheduler").create_schedule_group(**args)["ScheduleGroupArn"]
    return Created(name, {"Arn": arn})


@handles(
    "AWS::Scheduler::Schedule",
    "Name",
    "GroupName",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "FlexibleTimeWindow",
    "Target",
    "State",
    "Description",
)
def _schedule(m: Materializer, ctx: _Ctx, p: dict[str, Any]) -> Created:
    name = ctx.name(p.get("Name"))
    args: dict[str, Any] = {
        "Name": name,
        **_pick(p, "GroupName", "ScheduleExpression", "ScheduleExpressionTimezone", "State", "Description"),
        "FlexibleTimeWindow": p.get("FlexibleTimeWindow") or {"Mode": "OFF"},
        "Target": _pick(p["Target"], "Arn", "RoleArn", "Input"),
    }
    arn = m.client("scheduler").create_schedule(**args)["ScheduleArn"]
    return Created(name, {"Arn": arn})


def clean_work_dir(path: Path) -> None:
    """Remove the scratch directory of a previous run."""
    shutil.rmtree(path, ignore_errors=True)
