"""SageMaker training jobs on the local cloud: ``createTrainingJob.sync`` run for real.

Step Functions' optimised integration ``arn:aws:states:::sagemaker:createTrainingJob.sync`` starts
a training job and waits for it, then answers what ``DescribeTrainingJob`` says. moto's Step
Functions does not run SageMaker tasks; here (:func:`install`) the task runs the training image's
entry point (``python -m mlops.training.sagemaker``, the image's ``ENTRYPOINT``) in a subprocess,
with the job laid out as SageMaker lays it out, mapped to a temporary folder:

- ``/opt/ml/input/data/<channel>/``: every object under the channel's ``S3Uri`` prefix, by its key
  relative to the prefix (``SM_CHANNEL_<CHANNEL>`` names the folder);
- ``/opt/ml/input/config/hyperparameters.json``: the job's ``HyperParameters`` (``SM_INPUT_CONFIG_DIR``);
- ``/opt/ml/model/``: packed as ``model.tar.gz`` to ``<S3OutputPath>/<job name>/output/`` when the
  entry point exits 0 (``SM_MODEL_DIR``);
- ``/opt/ml/output/failure``: the text SageMaker reports as ``FailureReason`` when it exits non-zero.

The subprocess imports only what the image installs (:class:`TrainingImage`: the layers of the
function that collects the job, which are the science, runtime and shared layers the Dockerfile
copies, plus ``containers/sagemaker-training/requirements.txt``), fenced as a Lambda function is
(:func:`mlops_local.worker._fence`), gets no AWS credentials (``EnableNetworkIsolation``), and is
stopped after ``StoppingCondition.MaxRuntimeInSeconds``.

A completed job's task result is its description (``TrainingJobStatus: Completed``,
``ModelArtifacts.S3ModelArtifacts``, ...); a failed one fails the task with ``States.TaskFailed``
and the description (``TrainingJobStatus: Failed``, ``FailureReason``) as the cause, as Step
Functions reports a failed ``.sync`` job.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, cast

# Where the training image's own requirements are (beside its Dockerfile).
IMAGE_REQUIREMENTS = Path("containers") / "sagemaker-training" / "requirements.txt"
ENTRY_POINT = "mlops.training.sagemaker"
FAILURE_REASON_LIMIT = 1024
# CreateTrainingJob's request fields (what a Task state's Parameters may bind).
CREATE_TRAINING_JOB_PARAMETERS = frozenset(
    {
        "TrainingJobName",
        "HyperParameters",
        "AlgorithmSpecification",
        "RoleArn",
        "InputDataConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "VpcConfig",
        "StoppingCondition",
        "Tags",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "TensorBoardOutputConfig",
        "ExperimentConfig",
        "ProfilerConfig",
        "ProfilerRuleConfigurations",
        "Environment",
        "RetryStrategy",
        "RemoteDebugConfig",
        "InfraCheckConfig",
        "SessionChainingConfig",
    }
)  # SageMaker's FailureReason is at most 1,024 characters


@dataclass(frozen=True)
class TrainingImage:
    """What the training image holds: folders put first on ``sys.path`` and the importable packages."""

    paths: list[Path] = field(default_factory=list)
    packages: frozenset[str] | None = None  # None: no fence


def requirement_packages(*requirements: Path) -> frozenset[str]:
    """The top-level import names of the distributions requirements files pin (``xgboost-cpu`` ->
    ``xgboost``) and of what they require in turn, as installed in this environment (the same pins
    the image installs)."""
    by_distribution: dict[str, set[str]] = {}
    for top, distributions in metadata.packages_distributions().items():
        for name in distributions:
            by_distribution.setdefault(_normal(name), set()).add(top)
    pending = [
        _normal(line.split("#", 1)[0].strip().split("==", 1)[0].split("[", 1)[0])
        for path in requirements
        for line in path.read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            if "extra ==" not in text.partition(";")[2]:  # an extra's requirements are not installed
                pending.append(_normal(re.split(r"[^A-Za-z0-9._-]", text.strip(), maxsplit=1)[0]))
    return frozenset(top for name in seen for top in by_distribution.get(name, ()))


def _normal(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def run_training_job(
    s3: Any, request: dict[str, Any], image: TrainingImage, region: str = "us-east-1"
) -> dict[str, Any]:
    """Run one ``CreateTrainingJob`` request to its end; ``DescribeTrainingJob``'s answer."""
    name = request["TrainingJobName"]
    described: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:{region}:123456789012:training-job/{name.lower()}",
        "AlgorithmSpecification": request.get("AlgorithmSpecification", {}),
        "RoleArn": request.get("RoleArn"),
        "HyperParameters": request.get("HyperParameters", {}),
        "InputDataConfig": request.get("InputDataConfig", []),
        "OutputDataConfig": request.get("OutputDataConfig", {}),
        "ResourceConfig": request.get("ResourceConfig", {}),
        "StoppingCondition": request.get("StoppingCondition", {}),
        "EnableNetworkIsolation": bool(request.get("EnableNetworkIsolation", False)),
        "CreationTime": _now(),
        "TrainingStartTime": _now(),
    }
    with tempfile.TemporaryDirectory(prefix="mlops-training-job-") as scratch:
        root = Path(scratch) / "opt" / "ml"
        environment = _lay_out(s3, request, root)
        limit = float((request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400))
        started = time.monotonic()
        failure = _run_entry_point(image, environment, root, limit)
        described["TrainingTimeInSeconds"] = max(1, round(time.monotonic() - started))
        described["TrainingEndTime"] = _now()
        if failure is None:
            output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
            uri = f"{output}/{name}/output/model.tar.gz"
            bucket, key = uri.removeprefix("s3://").split("/", 1)
            s3.put_object(Bucket=bucket, Key=key, Body=_tar_gz(root / "model"))
            described.update(
                TrainingJobStatus="Completed", SecondaryStatus="Completed", ModelArtifacts={"S3ModelArtifacts": uri}
            )
        else:
            described.update(TrainingJobStatus="Failed", SecondaryStatus="Failed", FailureReason=failure)
    return described


def _lay_out(s3: Any, request: dict[str, Any], root: Path) -> dict[str, str]:
    """The job's folders under ``root`` (``/opt/ml``), its channels downloaded; the SM_* variables."""
    environment = {
        "SM_MODEL_DIR": str(root / "model"),
        "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
        "SM_OUTPUT_DIR": str(root / "output"),
    }
    for folder in ("model", "output", "input/config"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(request.get("HyperParameters") or {}))
    for channel in request.get("InputDataConfig") or []:
        name = channel["ChannelName"]
        folder = root / "input" / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        environment[f"SM_CHANNEL_{name.upper()}"] = str(folder)
        bucket, prefix = channel["DataSource"]["S3DataSource"]["S3Uri"].removeprefix("s3://").split("/", 1)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :].lstrip("/")
                if not relative or relative.endswith("/"):
                    continue
                path = folder / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    return environment


def _run_entry_point(image: TrainingImage, environment: dict[str, str], root: Path, limit: float) -> str | None:
    """Run the image's entry point; ``None`` when it succeeded, else the job's FailureReason."""
    config = {"paths": [str(p) for p in image.paths], "packages": sorted(image.packages) if image.packages else None}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root.parent.parent),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MLOPS_TRAINING_IMAGE": json.dumps(config),
        **environment,
    }
    log = root / "output" / "job.log"
    with log.open("wb") as out:
        try:
            code = subprocess.run(
                [sys.executable, "-m", "mlops_local.training_image"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=limit,
                check=False,
                cwd=root,
            ).returncode
        except subprocess.TimeoutExpired:
            return f"MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds ({limit:g} s)"
    if code == 0:
        return None
    failure = root / "output" / "failure"
    if failure.is_file() and failure.read_text().strip():
        return failure.read_text().strip()[:FAILURE_REASON_LIMIT]
    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
    return f"AlgorithmError: exit code {code}: {' | '.join(tail)}"[:FAILURE_REASON_LIMIT]


def _tar_gz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=str(path.relative_to(folder)))
    return buffer.getvalue()


# ------------------------------------------------------------------------------ Step Functions task

# What PlanTraining names as the image when the deployment names none: the local cloud runs the
# repository's image definition whatever the URI, so a spec with backend sagemaker runs locally.
LOCAL_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-train:local"
REPOSITORY = Path(__file__).resolve().parents[2]


def configure_cloud(cloud: Any) -> TrainingImage | None:
    """Run the cloud's SageMaker tasks with the image the deployment's functions describe.

    The image is the layers of the function that collects a job (CollectCandidate: the science,
    runtime and shared layers, which the Dockerfile installs) plus the image's own requirements.
    PlanTraining without ``SAGEMAKER_TRAINING_IMAGE`` gets :data:`LOCAL_IMAGE`.
    """
    functions = list(cloud.runtime.functions.values()) if cloud.runtime is not None else []

    def by_service(suffix: str) -> list[Any]:
        return [f for f in functions if str(f.environment.get("POWERTOOLS_SERVICE_NAME", "")).endswith(suffix)]

    collect = by_service("-collect-candidate")
    if not collect:
        configure(None)
        return None
    requirements = REPOSITORY / IMAGE_REQUIREMENTS
    extra = requirement_packages(requirements) if requirements.is_file() else frozenset()
    packages = None if collect[0].packages is None else frozenset(collect[0].packages) | extra
    image = TrainingImage(paths=[d / "python" for d in collect[0].layer_dirs], packages=packages)
    for plan in by_service("-plan-training"):
        plan.environment.setdefault("SAGEMAKER_TRAINING_IMAGE", LOCAL_IMAGE)
    configure(image, cloud.client("s3"), cloud.region)
    install()
    return image


_state: dict[str, Any] = {"image": None, "s3": None, "region": "us-east-1", "installed": False}
_install_lock = threading.Lock()


def configure(image: TrainingImage | None, s3: Any = None, region: str = "us-east-1") -> None:
    """Which image the SageMaker tasks run, and the S3 client of the cloud they run in (``None``:
    moto's own handling, which forwards the request to moto's SageMaker)."""
    _state.update(image=image, s3=s3, region=region)


def install() -> None:
    """Route ``arn:aws:states:::sagemaker:*`` tasks to :class:`_SageMakerTask` once configured
    (process-wide, idempotent). The seam is ``state_task_factory.state_task_service_for``, the one
    place moto's Step Functions picks a service integration for a Task state's resource."""
    with _install_lock:
        if _state["installed"]:
            return
        # moto is imported where it is patched: its modules cost seconds (see mlops_local.patches)
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

        original = state_task_factory.state_task_service_for

        def state_task_service_for(service_name: str) -> Any:
            if service_name == "sagemaker" and _state["image"] is not None:
                return _sagemaker_task()
            return original(service_name=service_name)

        state_task_factory.state_task_service_for = state_task_service_for
        _state["installed"] = True


def _sagemaker_task() -> Any:
    """A Task state running ``sagemaker:createTrainingJob`` (plain or ``.sync``) with :func:`run_training_job`."""
    # moto's Step Functions classes, imported when a state machine uses a SageMaker task
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    class SageMakerTask(StateTaskServiceCallback):
        def __init__(self) -> None:
            # moto declares the patterns as str constants and annotates the set as of its class
            patterns: set[Any] = {ResourceCondition.WaitForTaskToken, ResourceCondition.Sync}
            super().__init__(supported_integration_patterns=patterns)
            self.described: dict[str, Any] | None = None

        def _get_supported_parameters(self) -> set[str] | None:
            return (
                set(CREATE_TRAINING_JOB_PARAMETERS) if self.resource.api_action.lower() == "createtrainingjob" else None
            )

        def _eval_service_task(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> None:
            action = self._get_boto_service_action()
            if action != "create_training_job":
                raise ValueError(f"the local cloud runs sagemaker:createTrainingJob only, not sagemaker:{action}")
            self.described = run_training_job(_state["s3"], normalised_parameters, _state["image"], _state["region"])
            env.stack.append({"TrainingJobArn": self.described["TrainingJobArn"]})

        def _build_sync_resolver(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> Any:
            env.stack.pop()  # CreateTrainingJob's answer; the job already ran to its end
            described = self.described or {}

            def resolve() -> dict[str, Any]:
                if described.get("TrainingJobStatus") == "Completed":
                    return described
                error = StatesErrorNameType.StatesTaskFailed.to_name()
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        # EventDetails is a total TypedDict of which one key is ever set (as moto sets it)
                        event_details=cast(
                            EventDetails,
                            {
                                "taskFailedEventDetails": TaskFailedEventDetails(
                                    resource=self._get_sfn_resource(),
                                    resourceType=self._get_sfn_resource_type(),
                                    error=error,
                                    cause=json.dumps(described, default=str),
                                )
                            },
                        ),
                    )
                )

            return resolve

    return SageMakerTask()
