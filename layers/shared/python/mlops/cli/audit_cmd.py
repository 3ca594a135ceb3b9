"""``mlops audit list|verify``: read and check the hash-chained audit trail."""

from __future__ import annotations

import heapq

import click

from mlops.audit import PLATFORM_CHAIN, AuditEvent
from mlops.cli.common import AppContext, emit, json_option, pass_app
from mlops.cli.models_cmd import open_registry
from mlops.errors import CheckFailedError
from mlops.registry import Registry


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
@json_option
@pass_app
def verify(app: AppContext, model: str | None) -> None:
    """Walk the hash chains; exit 1 naming every modified, inserted, deleted or reordered event."""
    registry = open_registry(app)
    chains = [model] if model is not None else _all_chains(registry)
    reports = [registry.audit.verify(chain) for chain in chains]
    bad = [r for r in reports if not r.ok]
    data = {"ok": not bad, "chains": [r.to_dict() for r in reports]}
    lines = [line for r in reports for line in r.lines()] or ["(no audit chains yet)"]
    emit(app, data, "\n".join(lines))
    if bad:
        problems = sum(len(r.findings) for r in bad)
        raise CheckFailedError(f"audit verify: {problems} problem(s) in chain(s) {', '.join(r.chain for r in bad)}")
