"""The stateful resources of every environment, and what would make CloudFormation replace one.

A replaced bucket, table or key is a new, empty one: the data (or, for the key, the ability to
decrypt it) stays behind in the old resource, retained or deleted. CloudFormation replaces a
resource when its logical id disappears from a stack (a rename is a delete plus a create), when
its type changes, or when a property documented "Update requires: Replacement" changes.

``tests/infra/stateful_baseline.json`` records, for every stateful resource of every environment
in ``cdk.json``, its stack, logical id, type, the values of those properties and its deletion
policies. ``tests/infra/test_safe_upgrades.py`` synthesizes the app and compares it with this file.

Regenerate the baseline deliberately, after deciding that a replacement is intended (or that a
new stateful resource should be protected from now on)::

    make upgrade-baseline            # or: python -m tests.infra.stateful_baseline --write
    python -m tests.infra.stateful_baseline --check    # the comparison alone, exit 1 on a finding
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BASELINE_PATH = ROOT / "tests" / "infra" / "stateful_baseline.json"
REGENERATE = "make upgrade-baseline (or: python -m tests.infra.stateful_baseline --write)"

_TEMPLATE_REFERENCE = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"


@dataclass(frozen=True)
class StatefulType:
    """A resource type whose replacement loses data, and what makes CloudFormation replace it."""

    replacement_properties: tuple[str, ...]
    doc: str
    why: str
    # True: holds the platform's data; DeletionPolicy and UpdateReplacePolicy follow the
    # environment's removal_policy (Retain where it is "retain").
    data: bool


# Each list is the properties the type's page documents as "Update requires: Replacement" (checked
# 2026-12 against the pages below and against the createOnlyProperties of CloudFormation's resource
# schemas, which cfn-lint ships; tests/infra/test_safe_upgrades.py keeps the two in step).
STATEFUL_TYPES: dict[str, StatefulType] = {
    # BucketName: Replacement. BucketNamePrefix and BucketNamespace are create-only too.
    # ObjectLockEnabled / ObjectLockConfiguration: "Update requires: No interruption" (not listed).
    "AWS::S3::Bucket": StatefulType(
        ("BucketName", "BucketNamePrefix", "BucketNamespace"),
        _TEMPLATE_REFERENCE + "aws-resource-s3-bucket.html",
        "its objects stay in the old bucket",
        data=True,
    ),
    # TableName, KeySchema, LocalSecondaryIndexes, ImportSourceSpecification: Replacement.
    # AttributeDefinitions is "Some interruptions" in general but changing a key attribute's type
    # goes with a KeySchema change: the key attributes' definitions are recorded (see _key_attributes).
    "AWS::DynamoDB::Table": StatefulType(
        ("TableName", "KeySchema", "LocalSecondaryIndexes", "ImportSourceSpecification", "AttributeDefinitions"),
        _TEMPLATE_REFERENCE + "aws-resource-dynamodb-table.html",
        "its items stay in the old table",
        data=True,
    ),
    # "If you change the value of the KeySpec, KeyUsage, Origin, or MultiRegion properties of an
    # existing KMS key, the update request fails, regardless of the value of the
    # UpdateReplacePolicy attribute." Not a replacement, but a failed upgrade: guarded the same way.
    "AWS::KMS::Key": StatefulType(
        ("KeySpec", "KeyUsage", "Origin", "MultiRegion"),
        _TEMPLATE_REFERENCE + "aws-resource-kms-key.html",
        "everything encrypted under it (bucket, tables, topic) can no longer be decrypted by the new key",
        data=True,
    ),
    # QueueName, FifoQueue: Replacement. A dead-letter queue holds failed events until redriven.
    "AWS::SQS::Queue": StatefulType(
        ("QueueName", "FifoQueue"),
        _TEMPLATE_REFERENCE + "aws-resource-sqs-queue.html",
        "the messages waiting in it (failed events kept for redrive) are lost",
        data=False,
    ),
    # Name: Replacement. The platform creates one monitoring schedule per model in the group at
    # run time (mlops.monitoring.schedules); deleting the group deletes them.
    "AWS::Scheduler::ScheduleGroup": StatefulType(
        ("Name",),
        _TEMPLATE_REFERENCE + "aws-resource-scheduler-schedulegroup.html",
        "the per-model monitoring schedules created in it at run time are deleted",
        data=False,
    ),
}
# Not stateful for this purpose: log groups (operational logs; a replacement starts a new group and
# the old one is kept or expires by its own policy), the KMS alias (points at the key; recreated
# with it), SNS topics, SSM parameters, functions, roles, state machines and alarms: all rebuilt
# from the templates with nothing of their own to lose.


def _key_attributes(properties: Mapping[str, Any]) -> list[Any] | None:
    """The AttributeDefinitions of the attributes the table's or a local index's key uses."""
    definitions = properties.get("AttributeDefinitions")
    if not isinstance(definitions, list):
        return definitions
    schemas: list[Any] = [properties.get("KeySchema")]
    indexes = properties.get("LocalSecondaryIndexes")
    if isinstance(indexes, list):
        schemas += [index.get("KeySchema") for index in indexes if isinstance(index, dict)]
    names = {
        element.get("AttributeName")
        for schema in schemas
        if isinstance(schema, list)
        for element in schema
        if isinstance(element, dict)
    }
    kept = [d for d in definitions if isinstance(d, dict) and d.get("AttributeName") in names]
    return sorted(kept, key=lambda d: str(d.get("AttributeName")))


def describe(resource: Mapping[str, Any]) -> dict[str, Any]:
    """What the baseline records of one stateful resource (its replacement-causing values)."""
    kind = STATEFUL_TYPES[resource["Type"]]
    properties = resource.get("Properties") or {}
    values = {name: properties.get(name) for name in kind.replacement_properties}
    if resource["Type"] == "AWS::DynamoDB::Table":
        values["AttributeDefinitions"] = _key_attributes(properties)
    return {
        "type": resource["Type"],
        "replacement_properties": values,
        "DeletionPolicy": resource.get("DeletionPolicy", "Delete"),
        "UpdateReplacePolicy": resource.get("UpdateReplacePolicy", "Delete"),
    }


def stateful_resources(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{stack name: {logical id: description}}`` for the stateful resources of these templates."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for stack in sorted(templates):
        resources = templates[stack].get("Resources") or {}
        entries = {
            logical_id: describe(resource)
            for logical_id, resource in sorted(resources.items())
            if resource.get("Type") in STATEFUL_TYPES
        }
        if entries:
            found[stack] = entries
    return found


@dataclass
class Comparison:
    """What an upgrade from the baseline to the current templates would do to stateful resources."""

    replacements: list[str] = field(default_factory=list)
    unprotected: list[str] = field(default_factory=list)  # Retain dropped from a resource that had it
    added: list[str] = field(default_factory=list)  # new stateful resources the baseline lacks

    @property
    def safe(self) -> bool:
        return not self.replacements and not self.unprotected

    def report(self) -> str:
        lines: list[str] = []
        if self.replacements:
            lines.append("An upgrade would REPLACE stateful resources (a new, empty resource; the data stays behind):")
            lines += [f"  - {line}" for line in self.replacements]
        if self.unprotected:
            lines.append("An upgrade would drop the Retain policy of stateful resources:")
            lines += [f"  - {line}" for line in self.unprotected]
        if self.added:
            lines.append("New stateful resources are not in the baseline yet (adding one is safe; record it):")
            lines += [f"  - {line}" for line in self.added]
        if lines:
            lines.append(
                "If this is intended (data migrated, or a new resource to protect), regenerate the baseline "
                f"deliberately and commit it: {REGENERATE}"
            )
        return "\n".join(lines)


def _value(value: Any) -> str:
    return "(not set)" if value is None else json.dumps(value, sort_keys=True)


def compare(baseline: Mapping[str, Any], current: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Comparison:
    """Compare a baseline (the JSON file's ``stacks``) with :func:`stateful_resources` of a new synth."""
    result = Comparison()
    for stack, resources in sorted(baseline.items()):
        now = current.get(stack)
        for logical_id, before in sorted(resources.items()):
            kind = STATEFUL_TYPES.get(before["type"])
            loses = kind.why if kind else "its state is lost"
            where = f"{stack}/{logical_id} ({before['type']})"
            if now is None:
                result.replacements.append(
                    f"{where}: stack {stack} is no longer synthesized, so its resources would be deleted or "
                    f"orphaned: {loses}"
                )
                continue
            after = now.get(logical_id)
            if after is None:
                same_type = sorted(
                    lid for lid, r in now.items() if r["type"] == before["type"] and lid not in resources
                )
                hint = f"; new {before['type']} under logical id {', '.join(same_type)}" if same_type else ""
                result.replacements.append(
                    f"{where}: logical id {logical_id} is gone (a renamed construct or moved resource is a delete "
                    f"plus a create){hint}: {loses}"
                )
                continue
            if after["type"] != before["type"]:
                result.replacements.append(f"{where}: type changes to {after['type']}: {loses}")
                continue
            for name, old in sorted(before["replacement_properties"].items()):
                new = after["replacement_properties"].get(name)
                if old != new:
                    doc = f" (Update requires: Replacement, {kind.doc})" if kind else ""
                    result.replacements.append(
                        f"{where}: {name} changes from {_value(old)} to {_value(new)}{doc}: {loses}"
                    )
            for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
                if before[policy] == "Retain" and after[policy] != "Retain":
                    result.unprotected.append(f"{where}: {policy} changes from Retain to {after[policy]}")
    for stack, resources in sorted(current.items()):
        for logical_id, after in sorted(resources.items()):
            if logical_id not in baseline.get(stack, {}):
                result.added.append(f"{stack}/{logical_id} ({after['type']})")
    return result


def load_baseline(path: Path = BASELINE_PATH) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: generate it with {REGENERATE}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def baseline_document(environments: Iterable[str], stacks: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "about": (
            "Stateful resources of every environment in cdk.json and the values of their replacement-causing "
            f"properties. Checked by tests/infra/test_safe_upgrades.py; regenerate deliberately: {REGENERATE}"
        ),
        "environments": sorted(environments),
        "stacks": dict(stacks),
    }


def synthesize_templates() -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Synthesize every environment in cdk.json; return their names and ``{stack name: template}``."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    for path in (ROOT, ROOT / "layers" / "shared" / "python"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import aws_cdk as cdk

    import app as cdk_app

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    with tempfile.TemporaryDirectory() as outdir:
        application = cdk.App(context=context, outdir=outdir)
        stages = cdk_app.build(application)
        assembly = application.synth()
        templates = {artifact.stack_name: artifact.template for artifact in assembly.stacks_recursively}
    return [stage.config.name for stage in stages], templates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.infra.stateful_baseline", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help=f"synthesize and (re)write {BASELINE_PATH.name}")
    mode.add_argument(
        "--check", action="store_true", help="synthesize and compare with the baseline (exit 1 if unsafe)"
    )
    args = parser.parse_args(argv)
    environments, templates = synthesize_templates()
    current = stateful_resources(templates)
    if args.check:
        comparison = compare(load_baseline()["stacks"], current)
        print(comparison.report() or "no stateful resource would be replaced; the baseline is complete")
        return 0 if comparison.safe and not comparison.added else 1
    previous = load_baseline()["stacks"] if BASELINE_PATH.exists() else {}
    comparison = compare(previous, current)
    if comparison.report():
        print(comparison.report().rsplit("\n", 1)[0])  # what this regeneration accepts
    BASELINE_PATH.write_text(json.dumps(baseline_document(environments, current), indent=2, sort_keys=True) + "\n")
    count = sum(len(resources) for resources in current.values())
    print(f"wrote {BASELINE_PATH.relative_to(ROOT)}: {count} stateful resources in {len(current)} stacks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
