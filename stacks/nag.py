"""cdk-nag AwsSolutions checks, checkov skips, and the one way this project acknowledges a finding.

Every acknowledgement states why the finding does not apply; ``acknowledge`` refuses a missing or
token reason, so no suppression is ever silent. cdk-nag 3 reports findings as validations:
an unacknowledged error finding fails synth. checkov (tests/infra/test_checkov.py) reads the
synthesized templates; its skips live in each resource's metadata (``Metadata: checkov: skip:
[{id, comment}]``) and are written only by :func:`acknowledge` (with ``checkov=``) or
:func:`skip_checkov`, under the same reason rules. Where cdk-nag and checkov flag the same concern,
one call records both with one reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

MIN_REASON_LENGTH = 20


class AcknowledgementError(ValueError):
    """An acknowledgement without a real reason."""


def _check_reason(what: str, reason: str) -> None:
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise AcknowledgementError(
            f"acknowledging {what} needs a reason of at least {MIN_REASON_LENGTH} "
            f"characters that says why it does not apply (got {reason!r})"
        )


def skip_checkov(scope: IConstruct, check_ids: str | Sequence[str], reason: str, *, types: Sequence[str] = ()) -> None:
    """Skip checkov ``check_ids`` on the CloudFormation resources of ``scope``, with a reason.

    Writes ``Metadata: checkov: skip: [{id, comment}]`` on ``scope`` itself when it is a
    CloudFormation resource, else on every resource below it (only those of ``types``, such as
    ``AWS::Lambda::Function``, when given). A scope with no such resource is a mistake: it raises.
    """
    ids = [check_ids] if isinstance(check_ids, str) else list(check_ids)
    for check_id in ids:
        if not re.fullmatch(r"CKV2?_AWS_\d+", check_id):
            raise AcknowledgementError(f"{check_id!r} is not a checkov AWS check id")
        _check_reason(check_id, reason)
    resources = [
        c
        for c in ([scope] if isinstance(scope, CfnResource) else scope.node.find_all())
        if isinstance(c, CfnResource) and (not types or c.cfn_resource_type in types)
    ]
    if not resources:
        wanted = list(types) or "any type"
        raise AcknowledgementError(f"{scope.node.path} holds no resource of {wanted} to skip {ids} on")
    for resource in resources:
        metadata = resource.get_metadata("checkov") or {}
        skips = [s for s in metadata.get("skip", []) if s["id"] not in ids]
        skips += [{"id": check_id, "comment": reason} for check_id in ids]
        resource.add_metadata("checkov", {**metadata, "skip": skips})


def acknowledge(
    scope: IConstruct,
    rule_id: str,
    reason: str,
    *,
    checkov: str | Sequence[str] = (),
    checkov_types: Sequence[str] = (),
) -> None:
    """Acknowledge cdk-nag finding ``rule_id`` on ``scope`` (and its children) with a reason.

    ``checkov`` names the checkov checks that flag the same concern: they are skipped on the same
    resources with the same reason (see :func:`skip_checkov`).

    Parameters
    ----------
    scope
        The construct the finding is about; the narrowest that holds it.
    rule_id
        The rule, such as ``AwsSolutions-IAM5``, or one finding of it,
        ``AwsSolutions-IAM5[Resource::*]``.
    reason
        Why this finding is acceptable here, in a full sentence.
    checkov, checkov_types
        checkov check ids skipped for the same reason, and the resource types they apply to.
    """
    if not rule_id.startswith("AwsSolutions-"):
        raise AcknowledgementError(f"{rule_id!r} is not an AwsSolutions rule id")
    _check_reason(rule_id, reason)
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
    if checkov:
        skip_checkov(scope, checkov, reason, types=checkov_types)


def check(scope: IConstruct) -> None:
    """Run AwsSolutions checks on ``scope`` (a Stage or App) at synth."""
    Validations.of(scope).add_plugins(AwsSolutionsChecks(scope))


# Actions that AWS offers on no narrower resource than "*".
MANAGED_POLICY = "Policy::arn:<AWS::Partition>:iam::aws:policy/"


def acknowledge_managed_policy(scope: IConstruct, policy: str, reason: str) -> None:
    """Acknowledge IAM4 for one AWS-managed policy (``service-role/AWSLambdaBasicExecutionRole``)."""
    acknowledge(scope, f"AwsSolutions-IAM4[{MANAGED_POLICY}{policy}]", reason)


RESOURCE_STAR_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",  # scoped by a namespace condition instead
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)
_GRANTS_ONLY: list[tuple[IConstruct, str]] = []


def acknowledge_grant_wildcards(scope: IConstruct, grants: str) -> None:
    """Mark ``scope`` (a function, role or state machine) as holding only CDK-grant permissions.

    CDK grants use action groups (``s3:GetObject*``) and sub-resource wildcards
    (``<bucket>/<prefix>/*``, ``<table>/index/*``, ``<function>:*``) on this deployment's own
    resources. :func:`finalize` acknowledges exactly those IAM5 findings, one by one, with the
    reason ``grants``; any ``*`` action, or ``*`` resource on an action that has a narrower
    resource, fails synth instead.
    """
    role = getattr(scope, "role", None)  # a Function's or StateMachine's role sits beside it, not below it
    _GRANTS_ONLY.append((role if role is not None else scope, grants))


def _flatten(node: Any) -> str:
    """cdk-nag's flattenCfnReference, so finding ids match the ones it reports."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(_flatten(item) for item in items)
        if "Fn::Sub" in node:
            return _flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return _flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_findings(document: dict[str, Any], where: str) -> list[str]:
    """IAM5 findings of a resolved policy document; raise on a grant broader than a CDK grant."""
    findings: list[str] = []
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = [str(a) for a in _as_list(statement.get("Action", []))]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                raise LeastPrivilegeError(f"{where}: grants every action ({action!r})")
            if "*" in action:
                findings.append(f"Action::{action}")
        for resource in _as_list(statement.get("Resource", [])):
            flat = _flatten(resource)
            if flat == "*" and not set(actions) <= RESOURCE_STAR_ACTIONS:
                raise LeastPrivilegeError(
                    f"{where}: grants {sorted(set(actions) - RESOURCE_STAR_ACTIONS)} on every resource ('*')"
                )
            if "*" in flat:
                findings.append(f"Resource::{flat}")
    return list(dict.fromkeys(findings))


class LeastPrivilegeError(ValueError):
    """A policy broader than any CDK grant would make."""


def finalize(scope: IConstruct, imports: Mapping[tuple[str, str], Any]) -> None:
    """Acknowledge the IAM5 findings of every scope marked by :func:`acknowledge_grant_wildcards`.

    Reads only: cdk-nag reports a finding on another stack's resource by its final form, the
    ``Fn::ImportValue`` of an export. ``imports`` maps each such ``(logical id, attribute)`` to
    that import; the stage makes the exports where it builds the stacks
    (:func:`stacks.stage.export_policy_references`). A reference missing from it is a mistake: it raises.
    """
    marked = [(s, g) for s, g in _GRANTS_ONLY if s.node.path.startswith(scope.node.path + "/")]

    def as_imports(node: Any, local: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [as_imports(item, local) for item in node]
        if not isinstance(node, dict):
            return node
        if "Fn::GetAtt" in node and node["Fn::GetAtt"][0] not in local:
            reference = tuple(node["Fn::GetAtt"])
            if reference not in imports:
                raise LeastPrivilegeError(f"{reference} is another stack's, not exported where the stacks are built")
            return imports[reference]
        return {key: as_imports(value, local) for key, value in node.items()}

    local_ids = StackLogicalIds()
    for marked_scope, grants in marked:
        for construct in marked_scope.node.find_all():
            if not isinstance(construct, iam.CfnPolicy | iam.CfnManagedPolicy):
                continue
            consumer = Stack.of(construct)
            document = as_imports(consumer.resolve(construct.policy_document), local_ids(consumer))
            for finding in wildcard_findings(document, construct.node.path):
                acknowledge(
                    construct,
                    f"AwsSolutions-IAM5[{finding}]",
                    f"Only CDK grant methods scoped to this deployment's own resources: {grants}.",
                )


def logical_ids(stack: Stack) -> frozenset[str]:
    """The logical ids of ``stack``'s own resources (a ``Fn::GetAtt`` to any other is cross-stack)."""
    return frozenset(
        stack.get_logical_id(c) for c in stack.node.find_all() if isinstance(c, CfnResource) and Stack.of(c) is stack
    )


class StackLogicalIds:
    """:func:`logical_ids` of each stack, worked out once per stack for one pass over many policies.

    Each logical id is a call into the CDK's JavaScript process: reading a stack's ids again for
    each of its ~90 policies took about a third of building and synthesizing a stage. A pass
    that adds resources to a stack must not use one instance before and after.
    """

    def __init__(self) -> None:
        self._by_path: dict[str, frozenset[str]] = {}

    def __call__(self, stack: Stack) -> frozenset[str]:
        path = stack.node.path
        if path not in self._by_path:
            self._by_path[path] = logical_ids(stack)
        return self._by_path[path]
