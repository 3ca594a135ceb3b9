"""Create a synthesized stack's resources through the local service APIs, in dependency order.

Why not moto's CloudFormation: it silently drops bucket policies, versioning, layers and the S3
notification custom resource. Creating each resource through its own API keeps every property
visible, and each type the local cloud cannot create is reported by name. The creators live by
service family in the ``resources_*`` modules (imported here so that each registers its types);
their shared toolkit is :mod:`mlops_local.creators`.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from mlops.errors import MlopsError

# Imported for their registrations: each module's @handles decorators fill HANDLERS.
from mlops_local import resources_api, resources_compute, resources_messaging, resources_storage  # noqa: F401
from mlops_local.assembly import Stack
from mlops_local.creators import HANDLERS, Context, MaterializeError, physical_name
from mlops_local.intrinsics import Resolver, TemplateError, references
from mlops_local.runtime import LambdaRuntime

# Resource types without local meaning; created nowhere, listed at start-up.
NO_LOCAL_MEANING = {
    "AWS::CDK::Metadata": "CDK version reporting",
    "AWS::ApiGateway::Account": "account-wide CloudWatch role of API Gateway",
}


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
        # layer version ARN -> the top-level packages it ships (what a function with it may import)
        self.layer_packages: dict[str, frozenset[str]] = {}
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
                created = func(self, Context(stack, logical_id, type_, resolver), props)
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
    def asset_dir(self, ctx: Context, location: dict[str, Any], what: str) -> Path:
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


def clean_work_dir(path: Path) -> None:
    """Remove the scratch directory of a previous run."""
    shutil.rmtree(path, ignore_errors=True)
