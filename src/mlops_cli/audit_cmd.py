"""``mlops audit list|verify|digest``: read and check the hash-chained audit trail and its signed digests."""

from __future__ import annotations

import heapq
import json
from typing import Any

import click

from mlops.errors import CheckFailedError, MlopsError, NotFoundError
from mlops.registry.audit import PLATFORM_CHAIN, AuditEvent
from mlops.registry.digest import DEFAULT_DEPTH, DigestStore, KmsSigner
from mlops.registry.digest_check import AnchorReport, check_against_digests
from mlops.registry.versions import Registry
from mlops_cli.common import AppContext, emit, json_option, pass_app
from mlops_cli.models_cmd import open_registry


def _all_chains(registry: Registry) -> list[str]:
    """Chains with an anchor, plus every model (a model whose anchor vanished is still checked)."""
    chains = set(registry.audit.chains())
    token: str | None = None
    while True:
        page = registry.list_models(limit=200, next_token=token)
        chains.update(m.name for m in page.items)
        token = page.next_token
        if token is None:
            break
    return sorted(chains)


def _event_line(event: AuditEvent) -> str:
    return f"{event.time}  {event.chain:<16} {event.seq:>5}  {event.actor:<28} {event.action:<20} {event.subject}"


@click.group("audit")
def command() -> None:
    """The audit trail: every change to specs, datasets, versions and aliases, hash-chained."""


@command.command("list")
@click.option("--model", default=None, help=f"Only this model's chain ({PLATFORM_CHAIN} for platform events).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Events to show.")
@click.option("--next-token", default=None, help="Continue a previous listing (with --model).")
@json_option
@pass_app
def list_events(app: AppContext, model: str | None, limit: int, next_token: str | None) -> None:
    """List audit events, newest first (of one model, or of every chain)."""
    registry = open_registry(app)
    token: str | None = None
    if model is not None:
        events, token = registry.audit.list_events(model, limit=limit, next_token=next_token)
    else:
        if next_token:
            raise click.UsageError("--next-token needs --model (listings across chains are not paginated)")
        per_chain = [registry.audit.list_events(chain, limit=limit)[0] for chain in _all_chains(registry)]
        events = heapq.nlargest(limit, (e for chain in per_chain for e in chain), key=lambda e: (e.time, e.seq))
    lines = [_event_line(e) for e in events] or ["(no audit events)"]
    if token:
        lines.append(f"more: --next-token {token}")
    emit(app, {"events": [e.to_dict() for e in events], "next_token": token}, "\n".join(lines))


@command.command("verify")
@click.option("--model", default=None, help="Only this model's chain (default: every chain).")
@click.option(
    "--digests",
    "depth",
    type=click.IntRange(0),
    default=DEFAULT_DEPTH,
    show_default=True,
    help="How many of the newest signed digests to check (0: all).",
)
@json_option
@pass_app
def verify(app: AppContext, model: str | None, depth: int) -> None:
    """Walk the hash chains and check them against the signed digests outside the tables.

    Exit 1 naming every modified, inserted, deleted or reordered event, every event that differs
    from what a signed digest anchored (an edit re-chained with the anchor moved), and every
    digest that is missing, unsigned or forged. Events newer than the last digest are reported as
    not yet anchored.
    """
    registry = open_registry(app)
    chains = [model] if model is not None else _all_chains(registry)
    stored = {chain: list(registry.audit.items(chain)) for chain in chains}
    reports = [registry.audit.verify(chain, stored[chain]) for chain in chains]
    anchor = _check_digests(app, stored, depth, all_chains=model is None)
    bad = [r for r in reports if not r.ok]
    ok = not bad and (anchor is None or anchor.ok)
    chain_data = [r.to_dict() for r in reports]
    lines = [line for r in reports for line in r.lines()]
    if anchor is not None:
        for data in chain_data:
            data.update(anchor.chains[data["chain"]].to_dict() if data["chain"] in anchor.chains else {})
            data["anchor_findings"] = [f.to_dict() for f in anchor.chain_findings(data["chain"])]
        lines += [anchor.chain_line(chain) for chain in chains]
        lines += [f.line() for f in anchor.findings]
        lines.append(anchor.summary_line())
    else:
        lines.append("digests: this deployment has no digest bucket; chains checked against the tables only")
    data = {"ok": ok, "chains": chain_data, "digests": anchor.to_dict() if anchor is not None else None}
    emit(app, data, "\n".join(lines or ["(no audit chains yet)"]))
    if not ok:
        problems = sum(len(r.findings) for r in bad) + (len(anchor.findings) if anchor is not None else 0)
        findings = anchor.findings if anchor is not None else []
        named = sorted({r.chain for r in bad} | {f.chain for f in findings if f.chain})
        where = [f"chain(s) {', '.join(named)}"] if named else []
        where += ["the digests"] if any(f.chain is None for f in findings) else []
        raise CheckFailedError(f"audit verify: {problems} problem(s) in {' and '.join(where)}")


def _check_digests(
    app: AppContext, stored: dict[str, list[dict[str, Any]]], depth: int, *, all_chains: bool
) -> AnchorReport | None:
    platform = app.platform()
    if not platform.audit_digest_bucket or not platform.audit_signing_key_arn:
        return None
    session = app.session()
    store = DigestStore(session.client("s3"), platform.audit_digest_bucket)
    signer = KmsSigner(session.client("kms"), platform.audit_signing_key_arn)
    return check_against_digests(stored, store, signer, depth=depth, all_chains=all_chains)


@command.command("digest")
@json_option
@pass_app
def digest(app: AppContext) -> None:
    """Write a signed digest of every chain's head now (runs the scheduled digest function)."""
    name = app.platform().audit_digest_function
    if not name:
        raise NotFoundError("this deployment has no audit digest function (SSM parameter audit-digest-function)")
    response = app.session().client("lambda").invoke(FunctionName=name, Payload=b"{}")
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError") or not isinstance(payload, dict):
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        raise MlopsError(f"the audit digest function failed: {message}")
    if payload.get("skipped"):
        emit(app, payload, f"no digest written: {payload.get('reason')} (the digests written first anchor the heads)")
        return
    lines = [f"digest #{payload['number']} of {payload['time']}: {payload['chains']} chain(s) anchored"]
    lines += [f"{r['chain']}: refused: {r['reason']}" for r in payload.get("refused", [])]
    emit(app, payload, "\n".join(lines))
    if payload.get("refused"):
        count = len(payload["refused"])
        raise CheckFailedError(f"audit digest: {count} chain(s) not advanced (run `mlops audit verify`)")
