"""Signed digests of the audit chains' heads, kept where no platform role can change them.

The hash chains (:mod:`mlops.registry.audit`) and their anchors live in the tables; anyone allowed to
append audit events could also rewrite an event, recompute every later hash and move the anchor,
and the chain would still verify. A *digest* fixes the chains' heads outside the tables: every
few minutes one function (the only principal allowed ``kms:Sign`` on the signing key and
``s3:PutObject`` on the digest bucket) writes, for every chain, ``{chain, seq, hash}`` of its
newest event, the time, and the sha256 of the previous digest (digests chain too), signed with an
asymmetric KMS key (ECDSA P-256) into an S3 bucket under Object Lock. ``mlops audit verify`` then
checks that each stored event a digest names still has the digested hash.

Before it digests a chain the function checks that the chain *extends* the previous digest's head:
the event at the digested seq still has the digested hash, and every newer event's hash matches
its content and links to its predecessor. A chain that does not is not advanced: the digest keeps
its previous head and records the refusal, which ``audit verify`` reports.

Object layout: ``digests/<10**12 - number, 12 digits>.json``, so S3's ascending listing gives the
newest digest first. Each object is an envelope::

    {"format": 1, "body": "<canonical JSON of the digest>", "signature": "<base64>",
     "key_id": "<signing key ARN>", "algorithm": "ECDSA_SHA_256"}

The signature is KMS ``Sign`` over the sha256 of ``body`` (``MessageType=DIGEST``); the digest
chain links bodies by their sha256.

Examples
--------
>>> d = Digest(number=1, time="2026-12-06T04:15:00.000Z", previous_sha256=GENESIS,
...            heads=(ChainHead("churn", 3, "ab" * 32),))
>>> Digest.from_body(d.body()) == d
True
>>> digest_key(1)
'digests/999999999999.json'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mlops.contracts.names import DIGEST_PREFIX
from mlops.errors import CheckFailedError, ConflictError
from mlops.registry.audit import AuditTrail, utc_now
from mlops.registry.chain import GENESIS, AuditEvent, canonical_json

DIGEST_FORMAT = 1
SIGNING_ALGORITHM = "ECDSA_SHA_256"
_NUMBER_SPACE = 10**12
# How many digests `audit verify` walks back by default (a day of digests every 15 minutes).
DEFAULT_DEPTH = 96


def digest_key(number: int) -> str:
    """The object key of digest ``number`` (newest first in S3's listing)."""
    if not 1 <= number < _NUMBER_SPACE:
        raise ValueError(f"digest number {number} is out of range")
    return f"{DIGEST_PREFIX}{_NUMBER_SPACE - number:012d}.json"


def number_of_key(key: str) -> int | None:
    """The digest number a key names (None for a key that is not a digest's)."""
    stem = key.removeprefix(DIGEST_PREFIX).removesuffix(".json")
    if not key.startswith(DIGEST_PREFIX) or not key.endswith(".json") or len(stem) != 12 or not stem.isdigit():
        return None
    number = _NUMBER_SPACE - int(stem)
    return number if 1 <= number < _NUMBER_SPACE else None


class DigestFormatError(ValueError):
    """A stored digest that is not one this module wrote (names what is wrong)."""


@dataclass(frozen=True)
class ChainHead:
    """A chain's newest event as a digest records it."""

    chain: str
    seq: int
    hash: str


@dataclass(frozen=True)
class Refusal:
    """A chain the digest function would not advance, and why."""

    chain: str
    reason: str


@dataclass(frozen=True)
class Digest:
    """One digest: every chain's head at ``time``, linked to the previous digest."""

    number: int
    time: str
    previous_sha256: str
    heads: tuple[ChainHead, ...]
    refused: tuple[Refusal, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": DIGEST_FORMAT,
            "number": self.number,
            "time": self.time,
            "previous_sha256": self.previous_sha256,
            "chains": [{"chain": h.chain, "seq": h.seq, "hash": h.hash} for h in self.heads],
            "refused": [{"chain": r.chain, "reason": r.reason} for r in self.refused],
        }

    def body(self) -> bytes:
        """The canonical JSON that is signed and hashed."""
        return canonical_json(self.to_dict()).encode()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body()).hexdigest()

    def head(self, chain: str) -> ChainHead | None:
        return next((h for h in self.heads if h.chain == chain), None)

    @classmethod
    def from_body(cls, body: bytes) -> Digest:
        """Read a digest's body; raise :class:`DigestFormatError` naming what is malformed."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DigestFormatError(f"the body is not JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != DIGEST_FORMAT:
            raise DigestFormatError(f"the body is not a format-{DIGEST_FORMAT} digest")
        try:
            number, time, previous = data["number"], data["time"], data["previous_sha256"]
            heads = tuple(ChainHead(str(c["chain"]), c["seq"], str(c["hash"])) for c in data["chains"])
            refused = tuple(Refusal(str(r["chain"]), str(r["reason"])) for r in data.get("refused", []))
        except (KeyError, TypeError) as exc:
            raise DigestFormatError(f"the body lacks {exc}") from None
        if type(number) is not int or not isinstance(time, str) or not _is_sha256(previous):
            raise DigestFormatError("number, time or previous_sha256 has the wrong type")
        if any(type(h.seq) is not int or not _is_sha256(h.hash) for h in heads):
            raise DigestFormatError("a chain head's seq or hash has the wrong type")
        return cls(number, time, previous, heads, refused)


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


# ---------------------------------------------------------------------------------------------
class Signer(Protocol):
    """Signs and verifies sha256 digests of message bodies (KMS, or a test's key)."""

    key_id: str

    def sign(self, message_sha256: bytes) -> bytes: ...

    def verify(self, message_sha256: bytes, signature: bytes) -> bool: ...


class KmsSigner:
    """An asymmetric KMS key (``ECC_NIST_P256``, ``SIGN_VERIFY``): ``kms:Sign`` and ``kms:Verify``."""

    def __init__(self, client: Any, key_id: str) -> None:
        self.client = client
        self.key_id = key_id

    def sign(self, message_sha256: bytes) -> bytes:
        response = self.client.sign(
            KeyId=self.key_id, Message=message_sha256, MessageType="DIGEST", SigningAlgorithm=SIGNING_ALGORITHM
        )
        return bytes(response["Signature"])

    def verify(self, message_sha256: bytes, signature: bytes) -> bool:
        try:
            response = self.client.verify(
                KeyId=self.key_id,
                Message=message_sha256,
                MessageType="DIGEST",
                Signature=signature,
                SigningAlgorithm=SIGNING_ALGORITHM,
            )
        except Exception as exc:  # AWS answers a wrong signature with KMSInvalidSignatureException
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code == "KMSInvalidSignatureException":
                return False
            raise
        return bool(response.get("SignatureValid"))


def seal(digest: Digest, signer: Signer) -> bytes:
    """The stored envelope of ``digest``: its body and the signature over the body's sha256."""
    body = digest.body()
    signature = signer.sign(hashlib.sha256(body).digest())
    envelope = {
        "format": DIGEST_FORMAT,
        "body": body.decode(),
        "signature": base64.b64encode(signature).decode(),
        "key_id": signer.key_id,
        "algorithm": SIGNING_ALGORITHM,
    }
    return json.dumps(envelope, sort_keys=True).encode()


def open_envelope(data: bytes, signer: Signer) -> Digest:
    """Check an envelope's signature with ``signer``'s key; raise :class:`DigestFormatError` if it fails."""
    try:
        envelope = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise DigestFormatError("the object is not JSON") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("body"), str):
        raise DigestFormatError("the object is not a digest envelope (no body)")
    if envelope.get("algorithm") != SIGNING_ALGORITHM:
        raise DigestFormatError(f"it names signing algorithm {envelope.get('algorithm')!r}, not {SIGNING_ALGORITHM}")
    if envelope.get("key_id") != signer.key_id:
        raise DigestFormatError(f"it names signing key {envelope.get('key_id')!r}, not the platform's signing key")
    try:
        signature = base64.b64decode(str(envelope.get("signature", "")), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    body = envelope["body"].encode()
    if not signature:
        raise DigestFormatError("it carries no signature")
    if not signer.verify(hashlib.sha256(body).digest(), signature):
        raise DigestFormatError("its signature does not verify with the platform's signing key (forged or altered)")
    return Digest.from_body(body)


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredDigest:
    """One digest object as the bucket holds it: every version, oldest first."""

    key: str
    versions: tuple[str, ...]  # version ids, oldest first
    deleted: bool = False  # a delete marker hides it (the locked versions remain)

    @property
    def number(self) -> int | None:
        return number_of_key(self.key)


class DigestStore:
    """The digest bucket (S3, versioned, Object Lock)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def newest(self, limit: int) -> list[StoredDigest]:
        """Up to ``limit`` digest keys, newest first, with all their versions (0: every one)."""
        found: dict[str, dict[str, Any]] = {}
        paginator = self.client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=DIGEST_PREFIX):
            for version in page.get("Versions", []):
                entry = found.setdefault(version["Key"], {"versions": [], "deleted": False})
                entry["versions"].append(version["VersionId"])  # S3 lists a key's versions newest first
            for marker in page.get("DeleteMarkers", []):
                entry = found.setdefault(marker["Key"], {"versions": [], "deleted": False})
                entry["deleted"] = entry["deleted"] or bool(marker.get("IsLatest"))
            # Keys come in ascending order (newest digest first): stop once there are enough.
            if limit and len([k for k in found if found[k]["versions"]]) > limit:
                break
        stored = [
            StoredDigest(key, tuple(reversed(entry["versions"])), entry["deleted"])
            for key, entry in sorted(found.items())
            if entry["versions"]
        ]
        return stored[:limit] if limit else stored

    def read(self, key: str, version_id: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)["Body"].read())

    def put(self, key: str, data: bytes) -> str:
        """Write a new digest object; refuse (ConflictError) if the key exists already."""
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="application/json",
                IfNoneMatch="*",
                ChecksumAlgorithm="SHA256",  # Object Lock requires an integrity checksum on every put
            )
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise ConflictError(f"audit digest {key} was written by someone else first; not written") from None
            raise
        return str(response.get("VersionId", ""))


# ---------------------------------------------------------------------------------------------
def chain_head(trail: AuditTrail, chain: str, previous: ChainHead | None) -> ChainHead | Refusal | None:
    """The chain's newest event, if the chain extends ``previous`` (the last digested head).

    Reads only the events from ``previous.seq`` on (the whole chain the first time). Returns a
    :class:`Refusal` naming the first problem, or None for a chain with no event yet.
    """
    floor = previous.seq if previous else 0
    items: list[dict[str, Any]] = []
    for item in trail.items(chain, newest_first=True):
        seq = item.get("seq")
        if isinstance(seq, int | float) and not isinstance(seq, bool) and seq < floor:
            break
        items.append(item)
        if seq == floor and floor:
            break
    items.reverse()
    if not items:
        if previous is None:
            return None
        return Refusal(chain, f"the chain has no event at or after seq {previous.seq}, which the last digest anchors")
    events: list[AuditEvent] = []
    for item in items:
        try:
            events.append(AuditEvent.from_item(item))
        except ValueError as exc:
            return Refusal(chain, f"the stored item at seq {item.get('seq')} is malformed: {exc}")
    first = events[0]
    if previous is not None:
        if first.seq != previous.seq:
            return Refusal(chain, f"the event at seq {previous.seq}, which the last digest anchors, is missing")
        if first.hash != previous.hash:
            return Refusal(chain, f"the event at seq {previous.seq} no longer has the hash the last digest anchors")
    elif first.seq != 1 or first.prev_hash != GENESIS:
        return Refusal(chain, "the chain does not start at seq 1 from the genesis hash")
    for before, event in zip([None, *events], events, strict=False):
        if event.computed_hash() != event.hash:
            return Refusal(chain, f"the event at seq {event.seq} does not match its hash")
        if before is not None and (event.seq != before.seq + 1 or event.prev_hash != before.hash):
            return Refusal(chain, f"the event at seq {event.seq} does not link to the event at seq {before.seq}")
    last = events[-1]
    return ChainHead(chain, int(last.seq), last.hash)


def newest_digest(store: DigestStore, signer: Signer) -> Digest | None:
    """The newest digest, checked (signature, key); raise CheckFailedError if it does not verify."""
    stored = store.newest(1)
    if not stored:
        return None
    newest = stored[0]
    try:
        digest = open_envelope(store.read(newest.key, newest.versions[0]), signer)
    except DigestFormatError as exc:
        raise CheckFailedError(
            f"audit digest {newest.key} does not verify: {exc}; refusing to chain a new digest to it "
            "(run `mlops audit verify`)"
        ) from None
    if digest.number != newest.number:
        raise CheckFailedError(f"audit digest {newest.key} holds digest #{digest.number}; refusing to chain to it")
    return digest


def write_digest(
    trail: AuditTrail, store: DigestStore, signer: Signer, *, clock: Callable[[], str] = utc_now
) -> Digest:
    """Digest every chain's head now, chained to the newest digest, signed; store it and return it.

    Raises
    ------
    CheckFailedError
        The newest stored digest does not verify (nothing is chained to a forged digest).
    ConflictError
        Another writer stored this digest number first.
    """
    previous = newest_digest(store, signer)
    chains = set(trail.chains()) | ({h.chain for h in previous.heads} if previous else set())
    heads: list[ChainHead] = []
    refused: list[Refusal] = []
    for chain in sorted(chains):
        before = previous.head(chain) if previous else None
        found = chain_head(trail, chain, before)
        if isinstance(found, ChainHead):
            heads.append(found)
        elif isinstance(found, Refusal):
            refused.append(found)
            if before is not None:
                heads.append(before)  # keep the last head that was verified
    digest = Digest(
        number=previous.number + 1 if previous else 1,
        time=clock(),
        previous_sha256=previous.sha256 if previous else GENESIS,
        heads=tuple(heads),
        refused=tuple(refused),
    )
    store.put(digest_key(digest.number), seal(digest, signer))
    return digest


def digest_summary(digest: Digest, bucket: str) -> dict[str, Any]:
    """What the digest function returns and ``mlops audit digest`` prints."""
    return {
        "number": digest.number,
        "time": digest.time,
        "key": digest_key(digest.number),
        "bucket": bucket,
        "sha256": digest.sha256,
        "chains": len(digest.heads),
        "refused": [{"chain": r.chain, "reason": r.reason} for r in digest.refused],
    }


def write_digest_from_env(*, session: Any = None) -> dict[str, Any]:
    """The digest function's work, with the resources the stacks name in its environment."""
    import boto3

    from mlops.settings import Platform

    platform = Platform.from_env()
    if not platform.audit_digest_bucket or not platform.audit_signing_key_arn:
        raise CheckFailedError("AUDIT_DIGEST_BUCKET and AUDIT_SIGNING_KEY_ARN must be set for the digest function")
    session = session or boto3.session.Session()
    trail = AuditTrail.for_dynamodb(
        session.client("dynamodb"), audit_table=platform.audit_table, registry_table=platform.registry_table
    )
    store = DigestStore(session.client("s3"), platform.audit_digest_bucket)
    signer = KmsSigner(session.client("kms"), platform.audit_signing_key_arn)
    return write_digest_racing(trail, store, signer, bucket=platform.audit_digest_bucket)


def write_digest_racing(
    trail: AuditTrail, store: DigestStore, signer: Signer, *, bucket: str, attempts: int = 3
) -> dict[str, Any]:
    """Write a digest; when another run stored the same number first, chain to theirs and try again.

    Two scheduled runs can overlap (a slow run, a retried invocation, ``mlops audit digest`` beside
    the schedule). The loser re-reads the newest digest and digests again on top of it; after
    ``attempts`` lost races it stops without error (``skipped``): the winners' digests anchor the
    same heads or newer ones, and the next run digests whatever came after.
    """
    for _ in range(attempts):
        try:
            return digest_summary(write_digest(trail, store, signer), bucket)
        except ConflictError as exc:
            lost = str(exc)
    return {"skipped": True, "reason": lost, "bucket": bucket}
