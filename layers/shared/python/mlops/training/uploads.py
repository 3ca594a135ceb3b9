"""Uploading a dataset version through the upload API: the run it starts is named before it exists."""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops.data.trigger import execution_name
from mlops.errors import CheckFailedError, InputError, MlopsError
from mlops.registry.versions import check_model_name
from mlops.training.code import package_code


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    version_id: str
    size: int
    run_name: str
    sha256: str = ""
    uploader: str = ""  # the caller the upload API recorded (the identity AWS authenticated)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Authorize = Callable[[dict[str, Any]], dict[str, Any]]


def file_sha256(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def upload_dataset(
    model: str, path: str | Path, *, authorize: Authorize, name: str | None = None, timeout: float = 600
) -> Upload:
    """Upload a local file to ``datasets/<model>/<name>`` through the upload API; the upload starts the pipeline.

    ``authorize`` sends ``{"name", "sha256", "size"}`` to ``POST /models/<model>/uploads`` signed
    with the caller's credentials (the CLI's :func:`mlops_cli.common.signed_request`) and returns
    the API's answer: a presigned PUT and the headers it was signed with (the recorded uploader and
    the content's SHA-256, which S3 checks the body against).

    Raises
    ------
    InputError
        No such file, or the API refused the request (no spec for the model, a bad name).
    CheckFailedError
        S3 refused the PUT (the file changed after it was hashed, or the URL expired).
    """
    check_model_name(model)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    sha256, size = file_sha256(path)
    if size == 0:
        raise InputError(f"{path}: the file is empty")
    grant = authorize({"name": name or path.name, "sha256": sha256, "size": size})
    with path.open("rb") as body:
        version_id = put_presigned(grant, body, size, "text/csv", str(path), timeout=timeout)
    bucket, key = str(grant["bucket"]), str(grant["key"])
    if not version_id or version_id == "null":
        raise CheckFailedError(f"s3://{bucket}/{key}: the bucket is not versioned; the upload has no version id")
    return Upload(
        bucket=bucket,
        key=key,
        version_id=version_id,
        size=size,
        run_name=execution_name(bucket, key, version_id, model),
        sha256=sha256,
        uploader=str(grant.get("caller") or ""),
    )


def put_presigned(
    grant: dict[str, Any], body: Any, size: int, content_type: str, what: str, *, timeout: float = 600
) -> str | None:
    """PUT ``body`` (bytes or a binary file) to a grant's presigned URL; the object's version id.

    The grant is an upload API's answer: ``url`` and the ``headers`` it was signed with (the
    uploader metadata, the SHA-256 S3 checks the body against).

    Raises
    ------
    CheckFailedError
        S3 refused the PUT (the content changed after it was hashed, or the URL expired).
    MlopsError
        S3 cannot be reached.
    """
    # Content-Type set: urllib would call a PUT body a form (application/x-www-form-urlencoded).
    headers = {
        **{str(k): str(v) for k, v in (grant.get("headers") or {}).items()},
        "Content-Length": str(size),
        "Content-Type": content_type,
    }
    request = urllib.request.Request(grant["url"], data=body, headers=headers, method="PUT")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the presigned URL
            return response.headers.get("x-amz-version-id")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        code = re.search(r"<Code>([^<]+)</Code>", text)
        message = re.search(r"<Message>([^<]+)</Message>", text)
        raise CheckFailedError(
            f"S3 refused the upload of {what} to s3://{grant.get('bucket')}/{grant.get('key')} "
            f"(HTTP {exc.code} {code.group(1) if code else ''}: {message.group(1) if message else text[:200]}); "
            "if the file changed while uploading, upload it again"
        ) from None
    except urllib.error.URLError as exc:
        raise MlopsError(f"cannot reach S3 for the upload: {exc.reason}") from None


def upload_code(model: str, directory: str | Path, *, authorize: Authorize, timeout: float = 600) -> dict[str, Any]:
    """Package ``directory`` (:func:`mlops.training.code.package_code`) and store it as the model's next code version.

    ``authorize`` sends ``{"package", "sha256", "size"}`` to ``POST /models/<model>/code`` signed
    with the caller's credentials and returns the API's answer: the recorded version (``pending``)
    and a presigned PUT of exactly that content. After the PUT it sends ``{"confirm": version}``
    to the same route, which checks the stored package's sha256 and records it ``stored``.

    Returns
    -------
    dict
        The code version as recorded (``version``, ``sha256``, ``size``, ``package``, ``uploader``,
        ``uploaded_at``, ``uri``, ``state`` ``stored``, ``stored_at``).
    """
    check_model_name(model)
    data, sha256, package = package_code(directory)
    grant = authorize({"package": package, "sha256": sha256, "size": len(data)})
    put_presigned(grant, data, len(data), "application/zip", f"{directory} (package {package})", timeout=timeout)
    # The version counts only once the API has read the package back and checked its sha256.
    return dict(authorize({"confirm": grant["version"]}))
