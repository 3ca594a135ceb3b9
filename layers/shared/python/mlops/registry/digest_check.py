"""The audit trail checked against the signed digests (``mlops audit verify``).

Each stored event a digest names must still have the digested hash; the digests themselves must
be signed by the key, chain by their sha256, and never move backwards; a chain the digest function
refused to advance is reported. :mod:`mlops.registry.digest` writes the digests this module reads.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mlops.registry.audit import AuditTrail
from mlops.registry.chain import GENESIS
from mlops.registry.digest import (
    DEFAULT_DEPTH,
    Digest,
    DigestFormatError,
    DigestStore,
    Signer,
    open_envelope,
)

AnchorKind = Literal["forged", "overwritten", "digest-chain", "rewritten", "truncated", "refused"]


@dataclass(frozen=True)
class AnchorFinding:
    """A problem found against the digests (``chain`` None: about the digests themselves)."""

    kind: AnchorKind
    message: str
    chain: str | None = None
    seq: int | None = None
    digest: int | None = None
    digest_time: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "chain": self.chain,
            "seq": self.seq,
            "digest": self.digest,
            "digest_time": self.digest_time,
            "message": self.message,
        }

    def line(self) -> str:
        where = f"{self.chain}: " if self.chain else "digests: "
        at = f" at seq {self.seq}" if self.seq is not None else ""
        return f"{where}{self.kind}{at}: {self.message}"


@dataclass
class ChainAnchor:
    """How far one chain is anchored by the newest valid digest."""

    chain: str
    events: int
    anchored_seq: int | None
    not_anchored: int

    def to_dict(self) -> dict[str, Any]:
        return {"anchored_seq": self.anchored_seq, "not_yet_anchored": self.not_anchored}


@dataclass
class AnchorReport:
    """What :func:`check_against_digests` found."""

    checked: int = 0
    newest: Digest | None = None
    newest_key: str | None = None
    findings: list[AnchorFinding] = field(default_factory=list)
    chains: dict[str, ChainAnchor] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def chain_findings(self, chain: str) -> list[AnchorFinding]:
        return [f for f in self.findings if f.chain == chain]

    def to_dict(self) -> dict[str, Any]:
        newest = (
            {"number": self.newest.number, "time": self.newest.time, "key": self.newest_key}
            if self.newest is not None
            else None
        )
        return {
            "ok": self.ok,
            "checked": self.checked,
            "newest": newest,
            "findings": [f.to_dict() for f in self.findings],
        }

    def chain_line(self, chain: str) -> str:
        anchor = self.chains.get(chain)
        if anchor is None:
            return f"{chain}: not checked against the digests"
        if self.newest is None:
            return f"{chain}: not yet anchored: {anchor.events} events (no digest yet)"
        if anchor.anchored_seq is None:
            newest = f"digest #{self.newest.number} ({self.newest.time})"
            return f"{chain}: not in {newest}; not yet anchored: {anchor.events} events"
        return (
            f"{chain}: anchored up to seq {anchor.anchored_seq} by digest #{self.newest.number} ({self.newest.time}); "
            f"not yet anchored: {anchor.not_anchored} events"
        )

    def summary_line(self) -> str:
        if self.newest is None:
            return f"digests: {self.checked} checked, none valid yet (the trail is anchored only by the tables)"
        return f"digests: {self.checked} checked, newest valid #{self.newest.number} of {self.newest.time}"


def _read_digests(store: DigestStore, signer: Signer, depth: int, report: AnchorReport) -> list[tuple[str, Digest]]:
    """The valid digests among the newest ``depth``, newest first; findings for the rest."""
    valid: list[tuple[str, Digest]] = []
    stored = store.newest(depth)
    report.checked = len(stored)
    for entry in stored:
        number = entry.number
        if number is None:
            report.findings.append(AnchorFinding("forged", f"{entry.key} is not a digest's name"))
            continue
        if entry.deleted:
            report.findings.append(
                AnchorFinding(
                    "overwritten",
                    f"{entry.key} is hidden by a delete marker (its locked version remains and is checked)",
                    digest=number,
                )
            )
        if len(entry.versions) > 1:
            report.findings.append(
                AnchorFinding(
                    "overwritten",
                    f"{entry.key} has {len(entry.versions)} versions (the digest function writes each once); "
                    "the first version is checked",
                    digest=number,
                )
            )
        try:
            digest = open_envelope(store.read(entry.key, entry.versions[0]), signer)
        except DigestFormatError as exc:
            report.findings.append(AnchorFinding("forged", f"digest #{number} ({entry.key}): {exc}", digest=number))
            continue
        if digest.number != number:
            report.findings.append(
                AnchorFinding("forged", f"{entry.key} holds digest #{digest.number}, not #{number}", digest=number)
            )
            continue
        valid.append((entry.key, digest))
    for (_, newer), (_, older) in itertools.pairwise(valid):
        if newer.number != older.number + 1:
            report.findings.append(
                AnchorFinding(
                    "digest-chain",
                    f"digest #{newer.number} ({newer.time}) follows #{older.number} ({older.time}): "
                    f"{newer.number - older.number - 1} digest(s) between them are missing or do not verify",
                    digest=newer.number,
                    digest_time=newer.time,
                )
            )
        elif newer.previous_sha256 != older.sha256:
            report.findings.append(
                AnchorFinding(
                    "digest-chain",
                    f"digest #{newer.number} ({newer.time}) is not chained to digest #{older.number}: "
                    f"it names predecessor sha256 {newer.previous_sha256[:12]}..., #{older.number}'s is "
                    f"{older.sha256[:12]}...",
                    digest=newer.number,
                    digest_time=newer.time,
                )
            )
    if valid and valid[-1][1].number == 1 and valid[-1][1].previous_sha256 != GENESIS:
        report.findings.append(
            AnchorFinding("digest-chain", "digest #1 does not start from the genesis hash", digest=1)
        )
    return valid


def check_against_digests(
    chains: Mapping[str, Sequence[Mapping[str, Any]]],
    store: DigestStore,
    signer: Signer,
    *,
    depth: int = DEFAULT_DEPTH,
    all_chains: bool = True,
) -> AnchorReport:
    """Check stored chains (chain -> its items) against the newest ``depth`` digests.

    Each digest's signature is verified with ``signer`` (KMS ``Verify``) and the digests must chain
    to each other. For every chain head a valid digest holds, the stored event at that seq must
    exist and carry that hash: an edit before the digest, even re-chained with the anchor moved,
    changes it. Events after the newest valid digest are counted as not yet anchored.

    Parameters
    ----------
    chains
        The chains to check, each with its stored items (as :meth:`AuditTrail.items` yields them).
    depth
        How many of the newest digests to read (0: every digest).
    all_chains
        ``chains`` holds every chain: a chain the newest digest names but ``chains`` lacks was deleted.
    """
    report = AnchorReport()
    valid = _read_digests(store, signer, depth, report)
    if not valid:
        for chain, items in chains.items():
            report.chains[chain] = ChainAnchor(chain, len(items), None, len(items))
        return report
    report.newest_key, report.newest = valid[0]
    names = set(chains) | ({h.chain for h in report.newest.heads} if all_chains else set())
    for chain in sorted(names):
        items = chains.get(chain, ())
        by_seq = {item.get("seq"): item for item in items}
        top = max((s for s in by_seq if isinstance(s, int | float) and not isinstance(s, bool)), default=0)
        problem: AnchorFinding | None = None
        matched: tuple[int, Digest] | None = None  # the newest digest that still matches
        for _, digest in valid:  # newest first: the oldest mismatching digest bounds the edit
            head = digest.head(chain)
            if head is None:
                continue
            stored = by_seq.get(head.seq)
            if stored is None:
                cut = "cut off the end of the chain" if head.seq > top else "deleted"
                problem = AnchorFinding(
                    "truncated",
                    f"digest #{digest.number} of {digest.time} anchors seq {head.seq} (hash {head.hash[:12]}...), "
                    f"which is missing from the table: events were {cut} (the chain ends at seq {_fmt(top)})",
                    chain=chain,
                    seq=head.seq,
                    digest=digest.number,
                    digest_time=digest.time,
                )
            elif stored.get("hash") != head.hash:
                problem = AnchorFinding(
                    "rewritten",
                    f"the stored event's hash {str(stored.get('hash'))[:12]}... is not the hash digest "
                    f"#{digest.number} of {digest.time} anchors ({head.hash[:12]}...): an event at or before seq "
                    f"{head.seq} was changed after that digest and the chain re-hashed",
                    chain=chain,
                    seq=head.seq,
                    digest=digest.number,
                    digest_time=digest.time,
                )
            else:
                matched = (head.seq, digest)
                break
        if problem is not None:
            if matched is not None:
                problem = AnchorFinding(
                    problem.kind,
                    f"{problem.message}; digest #{matched[1].number} of {matched[1].time} still matches at seq "
                    f"{matched[0]}",
                    chain=problem.chain,
                    seq=problem.seq,
                    digest=problem.digest,
                    digest_time=problem.digest_time,
                )
            report.findings.append(problem)
        for refusal in report.newest.refused:
            if refusal.chain == chain:
                report.findings.append(
                    AnchorFinding(
                        "refused",
                        f"digest #{report.newest.number} of {report.newest.time} did not advance this chain: "
                        f"{refusal.reason}",
                        chain=chain,
                        digest=report.newest.number,
                        digest_time=report.newest.time,
                    )
                )
        newest_head = report.newest.head(chain)
        anchored = newest_head.seq if newest_head else None
        later = sum(
            1
            for s in by_seq
            if isinstance(s, int | float) and not isinstance(s, bool) and s > (anchored if anchored is not None else 0)
        )
        report.chains[chain] = ChainAnchor(chain, len(items), anchored, later)
    return report


def _fmt(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_trail(
    trail: AuditTrail,
    store: DigestStore,
    signer: Signer,
    chains: Iterable[str],
    *,
    depth: int = DEFAULT_DEPTH,
    all_chains: bool = True,
) -> AnchorReport:
    """:func:`check_against_digests` on the chains as ``trail`` stores them."""
    return check_against_digests(
        {chain: list(trail.items(chain)) for chain in chains}, store, signer, depth=depth, all_chains=all_chains
    )
