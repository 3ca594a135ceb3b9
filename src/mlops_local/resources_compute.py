"""Local creators of roles, layers, functions, state machines, event buses and rules."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mlops_local import distributed_map
from mlops_local.creators import (
    Context,
    Created,
    MaterializeError,
    handles,
    json_text,
    physical_name,
    pick,
    stub_zip,
    tag_list,
    zip_dir,
)
from mlops_local.worker_process import FunctionSpec

if TYPE_CHECKING:
    from mlops_local.materialize import Materializer


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
def _role(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    iam = m.client("iam")
    name = ctx.name(p.get("RoleName"), max_length=64)
    args: dict[str, Any] = {"RoleName": name, "AssumeRolePolicyDocument": json_text(p["AssumeRolePolicyDocument"])}
    args.update(pick(p, "Path", "Description", "PermissionsBoundary"))
    if "MaxSessionDuration" in p:
        args["MaxSessionDuration"] = int(p["MaxSessionDuration"])
    if p.get("Tags"):
        args["Tags"] = tag_list(p["Tags"])
    role = iam.create_role(**args)["Role"]
    for policy in p.get("Policies", []):
        iam.put_role_policy(
            RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json_text(policy["PolicyDocument"])
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
def _policy(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    iam = m.client("iam")
    document = json_text(p["PolicyDocument"])
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
def _managed_policy(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    iam = m.client("iam")
    name = ctx.name(p.get("ManagedPolicyName"), max_length=128)
    args: dict[str, Any] = {"PolicyName": name, "PolicyDocument": json_text(p["PolicyDocument"])}
    args.update(pick(p, "Path", "Description"))
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
def _layer(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    directory = m.asset_dir(ctx, p["Content"], "layer")
    name = ctx.name(p.get("LayerName"), max_length=140)
    args: dict[str, Any] = {"LayerName": name, "Content": {"ZipFile": stub_zip(f"local layer: {directory}")}}
    args.update(pick(p, "CompatibleRuntimes", "CompatibleArchitectures", "Description", "LicenseInfo"))
    arn = m.client("lambda").publish_layer_version(**args)["LayerVersionArn"]
    m.layer_packages[arn] = top_level_packages(directory / "python")
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


def top_level_packages(directory: Path) -> frozenset[str]:
    """The names ``import`` finds in a folder on ``sys.path``: packages, modules, extension modules."""
    names = set()
    for entry in directory.iterdir() if directory.is_dir() else ():
        if entry.name.endswith((".dist-info", ".egg-info", ".pth")) or entry.name in ("bin", "__pycache__"):
            continue
        names.add(entry.name.split(".", 1)[0] if entry.is_file() else entry.name)
    return frozenset(names)


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
def _function(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
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
        "Code": {"ZipFile": zip_dir(code_dir)},
        "Timeout": int(p.get("Timeout", 3)),
        "MemorySize": int(p.get("MemorySize", 128)),
        "Environment": {"Variables": environment},
        "Layers": list(p.get("Layers", [])),
    }
    args.update(
        pick(
            p, "Description", "Architectures", "TracingConfig", "LoggingConfig", "DeadLetterConfig", "EphemeralStorage"
        )
    )
    if p.get("Tags"):
        args["Tags"] = {t["Key"]: t["Value"] for t in tag_list(p["Tags"])}
    arn = m.client("lambda").create_function(**args)["FunctionArn"]
    missing = [layer for layer in args["Layers"] if layer not in m.layer_dirs and layer not in m.foreign_layers]
    if missing:
        m.deployment.warnings.append(
            f"{ctx.stack.name}/{ctx.logical_id}: layers {missing} are not from this "
            "assembly; their code is not on the function's path"
        )
    # What its code and layers ship, native or not (None: a layer from elsewhere, contents unknown).
    packages = None
    if not missing:
        packages = top_level_packages(code_dir).union(*(m.layer_packages[layer] for layer in args["Layers"]))
    m.runtime.register(
        FunctionSpec(
            name=name,
            arn=arn,
            handler=handler,
            code_dir=code_dir,
            layer_dirs=[m.layer_dirs[layer] for layer in args["Layers"] if layer in m.layer_dirs],
            packages=packages,
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
def _permission(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    args: dict[str, Any] = {
        "FunctionName": p["FunctionName"],
        "StatementId": ctx.logical_id,
        "Action": p["Action"],
        "Principal": p["Principal"],
    }
    args.update(pick(p, "SourceArn", "SourceAccount", "EventSourceToken", "PrincipalOrgID", "FunctionUrlAuthType"))
    m.client("lambda").add_permission(**args)
    return Created(ctx.logical_id)


@handles("AWS::Lambda::Version", "FunctionName", "Description")
def _version(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    out = m.client("lambda").publish_version(FunctionName=p["FunctionName"], Description=p.get("Description", ""))
    return Created(out["FunctionArn"], {"Version": out["Version"]})


@handles("AWS::Lambda::Alias", "FunctionName", "FunctionVersion", "Name", "Description", "RoutingConfig")
def _alias(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    args: dict[str, Any] = {
        "FunctionName": p["FunctionName"],
        "Name": p["Name"],
        "FunctionVersion": str(p["FunctionVersion"]),
    }
    args.update(pick(p, "Description", "RoutingConfig"))
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
def _state_machine(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
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
        # What moto's interpreter lacks of a Distributed Map moves where the local cloud runs it.
        "definition": distributed_map.rewrite(definition),
        "roleArn": p["RoleArn"],
        "type": p.get("StateMachineType", "STANDARD"),
    }
    if p.get("Tags"):
        args["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in tag_list(p["Tags"])]
    arn = m.client("stepfunctions").create_state_machine(**args)["stateMachineArn"]
    return Created(
        arn, {"Arn": arn, "Name": name, "StateMachineRevisionId": "local"}, detail={"definition": definition}
    )


@handles("AWS::Events::EventBus", "Name", "Tags", "Description")
def _event_bus(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
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
def _rule(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    events = m.client("events")
    name = ctx.name(p.get("Name"), max_length=64)
    args: dict[str, Any] = {"Name": name, "State": p.get("State", "ENABLED")}
    if "EventPattern" in p:
        args["EventPattern"] = json_text(p["EventPattern"])
    args.update(pick(p, "Description", "ScheduleExpression", "EventBusName", "RoleArn"))
    arn = events.put_rule(**args)["RuleArn"]
    targets = []
    for target in p.get("Targets", []):
        t = pick(
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
                k: (json_text(v) if k == "InputPathsMap" and isinstance(v, str) else v)
                for k, v in t["InputTransformer"].items()
            }
        targets.append(t)
    if targets:
        kwargs: dict[str, Any] = {"Rule": name, "Targets": targets}
        if "EventBusName" in p:
            kwargs["EventBusName"] = p["EventBusName"]
        events.put_targets(**kwargs)
    return Created(name, {"Arn": arn})
