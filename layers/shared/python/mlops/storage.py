"""Reading S3 objects: one place for ``s3://bucket/key`` URIs and for reading a body to its end; and
the presigned PUT every upload grant answers (datasets, code, imports, a notebook run's model).

Examples
--------
>>> split_s3_uri("s3://data/artifacts/churn/v1/model.pkl")
('data', 'artifacts/churn/v1/model.pkl')
"""

from __future__ import annotations

import base64
from typing import Any

from mlops.errors import InputError


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://bucket/key`` URI; :class:`InputError` naming anything else."""
    text = str(uri)
    if not text.startswith("s3://") or "/" not in text[5:]:
        raise InputError(f"{text!r} is not an s3://bucket/key URI")
    bucket, key = text[5:].split("/", 1)
    return bucket, key


def read_object(s3: Any, bucket: str, key: str) -> bytes:
    """The bytes of one S3 object (the body stream closed either way)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        return bytes(body.read())
    finally:
        body.close()


def read_uri(s3: Any, uri: str) -> bytes:
    """The bytes of the object an ``s3://bucket/key`` URI names."""
    return read_object(s3, *split_s3_uri(uri))


def read_uri_if_any(s3: Any, uri: str) -> bytes | None:
    """The bytes of the object ``uri`` names, or None when there is no such object (other errors raise)."""
    bucket, key = split_s3_uri(uri)
    try:
        return read_object(s3, bucket, key)
    except Exception as exc:  # botocore's ClientError: the domain names no botocore class
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "404", "NotFound"}:
            return None
        raise


def presigned_put(
    s3: Any, *, bucket: str, key: str, sha256: str, size: int, who: str, metadata_key: str, expires_s: int
) -> dict[str, Any]:
    """A presigned PUT of exactly one content: ``url``, ``method`` and the ``headers`` the PUT must carry.

    Signed in the URL, so S3 refuses anything else: the SHA-256 (``x-amz-checksum-sha256``, checked
    against the body), the length, and ``x-amz-meta-<metadata_key>`` naming ``who`` (the identity the
    API verified). ``s3`` must sign with SigV4 (KMS-encrypted buckets refuse SigV2 URLs).
    """
    checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
    url = s3.generate_presigned_url(
        "put_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "Metadata": {metadata_key: who},
            "ChecksumSHA256": checksum,
            "ContentLength": int(size),
        },
        ExpiresIn=expires_s,
        HttpMethod="PUT",
    )
    return {
        "url": url,
        "method": "PUT",
        "headers": {f"x-amz-meta-{metadata_key}": who, "x-amz-checksum-sha256": checksum},
    }
