"""Resolve CloudFormation intrinsic functions the way CloudFormation does at deploy time.

Supported: ``Ref`` (resources, parameters, pseudo parameters), ``Fn::GetAtt``, ``Fn::Join``,
``Fn::Sub`` (both forms, ``${!Literal}`` escapes), ``Fn::Select``, ``Fn::Split``, ``Fn::If``,
``Fn::ImportValue``, ``Fn::GetStackOutput``, ``Fn::FindInMap``, ``Fn::Base64``, ``Fn::GetAZs``, ``Fn::Length``,
``Fn::ToJsonString``, conditions (``Fn::Equals``, ``Fn::And``, ``Fn::Or``, ``Fn::Not``,
``Condition``) and ``AWS::NoValue``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from mlops.errors import InputError

ACCOUNT_ID = "123456789012"
_SUB = re.compile(r"\$\{([^}]*)\}")


class TemplateError(InputError):
    """A template construct the local cloud cannot resolve (names the stack and the construct)."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


def references(value: Any) -> set[str]:
    """Names a template fragment refers to through ``Ref``, ``Fn::GetAtt`` and ``Fn::Sub``.

    Pseudo parameters and parameters are included; callers keep the names that are resources.
    """
    found: set[str] = set()
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
                return found
            if key == "Fn::GetAtt":
                target = arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
                found.add(target)
                return found
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] if len(arg) > 1 else {})
                for name in _SUB.findall(text):
                    if not name.startswith("!") and name not in variables:
                        found.add(name.split(".", 1)[0])
                found |= references(variables)
                return found
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not NO_VALUE}
    if isinstance(value, list):
        return [_strip(v) for v in value if v is not NO_VALUE]
    return value


class Resolver:
    """Evaluates intrinsics of one stack against what has been created so far.

    Parameters
    ----------
    stack_name, region, account
        The stack's identity (pseudo parameters).
    template
        The stack's template (parameters, mappings, conditions).
    refs, attributes
        Logical id -> ``Ref`` value, and logical id -> ``GetAtt`` attributes, of created resources.
    exports
        Export name -> value, from the stacks created before this one.
    rewrite
        Applied to every resolved string (the local cloud turns AWS URLs into local ones).
    """

    def __init__(
        self,
        *,
        stack_name: str,
        region: str,
        account: str,
        template: dict[str, Any],
        refs: dict[str, Any],
        attributes: dict[str, dict[str, Any]],
        exports: dict[str, Any],
        parameter_values: dict[str, Any] | None = None,
        stack_outputs: dict[str, dict[str, Any]] | None = None,
        rewrite: Callable[[str], str] | None = None,
    ) -> None:
        self.stack_name = stack_name
        self.region = region
        self.account = account
        self.template = template
        self.refs = refs
        self.attributes = attributes
        self.exports = exports
        self.stack_outputs = stack_outputs if stack_outputs is not None else {}
        self.rewrite = rewrite or (lambda s: s)
        self.pseudo: dict[str, Any] = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        self.parameters: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            if parameter_values and name in parameter_values:
                self.parameters[name] = parameter_values[name]
            elif "Default" in spec:
                default = spec["Default"]
                kind = str(spec.get("Type", ""))
                if kind.startswith("List<") or kind == "CommaDelimitedList":
                    default = [p.strip() for p in str(default).split(",")]
                self.parameters[name] = default
        self._conditions: dict[str, bool] = {}

    def where(self, context: str) -> str:
        return f"stack {self.stack_name}, {context}"

    # -- conditions -------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = self.template.get("Conditions", {}).get(name)
            if spec is None:
                raise TemplateError(self.where(f"condition {name!r} is not defined"))
            self._conditions[name] = bool(self._eval_condition(spec))
        return self._conditions[name]

    def _eval_condition(self, spec: Any) -> Any:
        if isinstance(spec, dict) and len(spec) == 1:
            ((key, arg),) = spec.items()
            if key == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return str(left) == str(right) if type(left) is not type(right) else left == right
            if key == "Fn::And":
                return all(self._eval_condition(a) for a in arg)
            if key == "Fn::Or":
                return any(self._eval_condition(a) for a in arg)
            if key == "Fn::Not":
                return not self._eval_condition(arg[0])
            if key == "Condition":
                return self.condition(arg)
        return self.resolve(spec)

    # -- values -----------------------------------------------------------------------------
    def resolve(self, value: Any, context: str = "") -> Any:
        """Return ``value`` with every intrinsic evaluated (``AWS::NoValue`` entries removed)."""
        return _strip(self._resolve(value, context))

    def _resolve(self, value: Any, context: str) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                    return self._intrinsic(key, arg, context)
            return {k: self._resolve(v, context) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, context) for v in value]
        if isinstance(value, str):
            return self.rewrite(value)
        return value

    def ref(self, name: str, context: str = "") -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(self.where(f"{context}: Ref to {name!r}, which is not created (or not emulated)"))

    def get_att(self, name: str, attribute: str, context: str = "") -> Any:
        attrs = self.attributes.get(name)
        if attrs is None:
            raise TemplateError(
                self.where(f"{context}: Fn::GetAtt {name}.{attribute}: {name} is not created (or not emulated)")
            )
        if attribute not in attrs:
            raise TemplateError(
                self.where(
                    f"{context}: Fn::GetAtt {name}.{attribute}: the local cloud does "
                    f"not know attribute {attribute!r} (known: {', '.join(sorted(attrs))})"
                )
            )
        return attrs[attribute]

    def _sub(self, arg: Any, context: str) -> str:
        variables: dict[str, Any]
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, variables = arg[0], self._resolve(arg[1], context) if len(arg) > 1 else {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                value = self.get_att(logical, attribute, context)
            else:
                value = self.ref(name, context)
            return (
                value
                if isinstance(value, str)
                else json.dumps(value)
                if isinstance(value, (dict, list))
                else str(value)
            )

        return self.rewrite(_SUB.sub(replace, text))

    def _intrinsic(self, key: str, arg: Any, context: str) -> Any:
        if key == "Ref":
            return self.ref(arg, context)
        if key == "Fn::GetAtt":
            name, attribute = (arg[0], arg[1]) if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(name, self._resolve(attribute, context), context)
        if key == "Fn::Join":
            separator, items = arg
            parts = self._resolve(items, context)
            return self.rewrite(separator.join(str(p) for p in parts if p is not NO_VALUE))
        if key == "Fn::Sub":
            return self._sub(arg, context)
        if key == "Fn::Select":
            index, items = self._resolve(arg[0], context), self._resolve(arg[1], context)
            return items[int(index)]
        if key == "Fn::Split":
            separator, text = arg[0], self._resolve(arg[1], context)
            return str(text).split(separator)
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self._resolve(when_true if self.condition(name) else when_false, context)
        if key == "Fn::ImportValue":
            name = self._resolve(arg, context)
            if name not in self.exports:
                raise TemplateError(self.where(f"{context}: Fn::ImportValue {name!r}: no stack exports it"))
            return self.exports[name]
        if key == "Fn::GetStackOutput":  # CDK's cross-stack reference through stack outputs
            spec = self._resolve(arg, context)
            stack, output = spec.get("StackName"), spec.get("OutputName")
            if output not in self.stack_outputs.get(stack, {}):
                raise TemplateError(
                    self.where(f"{context}: Fn::GetStackOutput {stack}.{output}: no such stack output was created")
                )
            return self.stack_outputs[stack][output]
        if key == "Fn::FindInMap":
            mapping, top, second = (self._resolve(a, context) for a in arg[:3])
            try:
                return self.template["Mappings"][mapping][top][second]
            except KeyError as exc:
                raise TemplateError(
                    self.where(f"{context}: Fn::FindInMap {mapping}/{top}/{second} is not in the template's Mappings")
                ) from exc
        if key == "Fn::Base64":
            return base64.b64encode(str(self._resolve(arg, context)).encode()).decode()
        if key == "Fn::GetAZs":
            return [f"{self.region}{z}" for z in "abc"]
        if key == "Fn::Length":
            return len(self._resolve(arg, context))
        if key == "Fn::ToJsonString":
            return json.dumps(_strip(self._resolve(arg, context)), separators=(",", ":"))
        if key in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Condition"):
            return self._eval_condition({key: arg})
        raise TemplateError(self.where(f"{context}: intrinsic {key} is not supported by the local cloud"))
