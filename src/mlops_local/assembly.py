"""Read a synthesized CDK cloud assembly (``cdk.out``): its stacks, templates and assets.

The local cloud never re-defines a resource: everything it creates comes from the templates the
CDK app synthesized, and every piece of code it runs comes from the assets the assembly points at.
Nested Stage assemblies (``cdk.out/assembly-<stage>/``) are read recursively.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.errors import InputError


class AssemblyError(InputError):
    """The cloud assembly is missing, unreadable or not what a CDK synth produces."""


@dataclass(frozen=True)
class Asset:
    """One file or directory asset: where it is on disk and where CloudFormation expects it."""

    asset_id: str
    path: Path
    packaging: str  # "zip" (a directory zipped at publish time) or "file"
    bucket: str
    object_key: str


@dataclass
class Stack:
    """One CloudFormation stack of the assembly."""

    artifact_id: str
    name: str
    template_path: Path
    template: dict[str, Any]
    region: str | None
    account: str | None
    dependencies: list[str] = field(default_factory=list)  # artifact ids
    assets: dict[str, Asset] = field(default_factory=dict)  # object key -> asset

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.get("Resources", {}))

    def asset_for_key(self, object_key: str) -> Asset | None:
        """The asset CloudFormation would fetch from ``object_key`` (a Lambda code S3Key)."""
        return self.assets.get(object_key)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise AssemblyError(f"{path}: not found; run the synth first (make synth)") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise AssemblyError(f"{path}: not readable as JSON: {exc}") from exc


def _environment(env: str | None) -> tuple[str | None, str | None]:
    # "aws://123456789012/us-east-1" or "aws://unknown-account/unknown-region"
    if not env or not env.startswith("aws://"):
        return None, None
    account, _, region = env[len("aws://") :].partition("/")
    return (None if account.startswith("unknown") else account), (None if region.startswith("unknown") else region)


def _assets(manifest_path: Path) -> dict[str, Asset]:
    data = _read_json(manifest_path)
    found: dict[str, Asset] = {}
    for asset_id, entry in data.get("files", {}).items():
        source = entry.get("source", {})
        if "path" not in source:
            continue  # an executable-produced asset: nothing on disk to run
        path = Path(source["path"])
        if not path.is_absolute():
            path = (manifest_path.parent / path).resolve()
        for destination in entry.get("destinations", {}).values():
            key = destination.get("objectKey")
            if key:
                found[key] = Asset(
                    asset_id=asset_id,
                    path=path,
                    packaging=source.get("packaging", "file"),
                    bucket=destination.get("bucketName", ""),
                    object_key=key,
                )
    return found


def _read_manifest(directory: Path, stacks: list[Stack], seen: set[Path]) -> None:
    directory = directory.resolve()
    if directory in seen:
        return
    seen.add(directory)
    manifest = _read_json(directory / "manifest.json")
    artifacts: dict[str, Any] = manifest.get("artifacts", {})
    asset_manifests = {aid: a for aid, a in artifacts.items() if a.get("type") == "cdk:asset-manifest"}
    for artifact_id, artifact in artifacts.items():
        kind = artifact.get("type")
        if kind == "cdk:cloud-assembly":
            nested = artifact.get("properties", {}).get("directoryName")
            if nested:
                _read_manifest(directory / nested, stacks, seen)
        elif kind == "aws:cloudformation:stack":
            props = artifact.get("properties", {})
            template_path = directory / props["templateFile"]
            account, region = _environment(artifact.get("environment"))
            deps = [d for d in artifact.get("dependencies", []) if d not in asset_manifests]
            assets: dict[str, Asset] = {}
            for dep in artifact.get("dependencies", []):
                if dep in asset_manifests:
                    file = asset_manifests[dep].get("properties", {}).get("file")
                    if file:
                        assets.update(_assets(directory / file))
            stacks.append(
                Stack(
                    artifact_id=artifact_id,
                    name=props.get("stackName", artifact_id),
                    template_path=template_path,
                    template=_read_json(template_path),
                    region=region,
                    account=account,
                    dependencies=deps,
                    assets=assets,
                )
            )


def _order(stacks: list[Stack]) -> list[Stack]:
    by_id = {s.artifact_id: s for s in stacks}
    ordered: list[Stack] = []
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(stack: Stack) -> None:
        if stack.artifact_id in done:
            return
        if stack.artifact_id in visiting:
            raise AssemblyError(f"stack dependency cycle through {stack.name}")
        visiting.add(stack.artifact_id)
        for dep in stack.dependencies:
            if dep in by_id:
                visit(by_id[dep])
        visiting.discard(stack.artifact_id)
        done.add(stack.artifact_id)
        ordered.append(stack)

    for stack in stacks:
        visit(stack)
    return ordered


def load_assembly(directory: str | Path, stack_prefix: str | None = None) -> list[Stack]:
    """Return the assembly's stacks in deployment order (dependencies first).

    Parameters
    ----------
    directory
        The synth output directory (``cdk.out``).
    stack_prefix
        Keep only stacks whose name starts with this (for example ``"mlops-dev-"``).

    Raises
    ------
    AssemblyError
        The directory holds no readable cloud assembly.
    """
    root = Path(directory)
    if not (root / "manifest.json").is_file():
        raise AssemblyError(f"{root}: no manifest.json; run the synth first (make synth)")
    stacks: list[Stack] = []
    _read_manifest(root, stacks, set())
    if stack_prefix:
        stacks = [s for s in stacks if s.name.startswith(stack_prefix)]
    if not stacks:
        raise AssemblyError(
            f"{root}: the assembly holds no CloudFormation stacks" + (f" named {stack_prefix}*" if stack_prefix else "")
        )
    return _order(stacks)
