"""Spec revisions: every ``spec put`` stores a new revision; no revision is ever overwritten.

A spec is checked completely before it is stored: the parser checked every field, and
:func:`mlops.spec.estimators.check_estimator_params` checks the estimator's parameter names and search
space keys against the estimator itself.

Revisions are numbered per model (1, 2, 3, ...) from an atomic counter on the model's META item
and written with ``attribute_not_exists``, in one transaction with their audit event. Putting a
spec identical to the latest revision (same canonical JSON) stores nothing and returns that
revision, so re-running a deployment script does not pile up revisions.

Examples
--------
>>> from mlops.registry.versions import Registry
>>> from mlops.spec.model import parse_spec
>>> specs = SpecStore(Registry.in_memory())
>>> spec = parse_spec({"name": "churn", "task": "regression", "target": {"name": "y"},
...                    "features": [{"name": "x", "type": "float"}],
...                    "training": {"estimator": "sklearn.linear_model.Ridge"}})
>>> specs.put(spec, actor="alice").revision
1
>>> specs.put(spec, actor="alice").changed
False
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlops.errors import NotFoundError
from mlops.registry.keys import SPEC_SK_PREFIX, model_items, model_partition, sk_prefix, spec_key
from mlops.registry.tables import Condition, Put
from mlops.registry.tokens import decode_token, encode_token
from mlops.registry.versions import Registry, ResultPage, check_actor, check_model_name
from mlops.spec.view import SpecView

if TYPE_CHECKING:  # pydantic's import is paid by whoever parses a spec, not by every reader of the registry
    from mlops.spec.model import ModelSpec


@dataclass(frozen=True)
class SpecRevision:
    """One stored revision of a model's spec."""

    model: str
    revision: int
    fingerprint: str
    document: dict[str, Any]
    created_by: str
    created_at: str
    source: str | None
    changed: bool = True

    def spec(self) -> ModelSpec:
        """The stored document as a validated :class:`~mlops.spec.model.ModelSpec`."""
        from mlops.spec.model import parse_spec

        return parse_spec(self.document, f"{self.model} spec revision {self.revision}")

    def view(self) -> SpecView:
        """What serving reads of the stored document, without pydantic (it was checked when stored)."""
        return SpecView.from_document(self.document, self.fingerprint)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> SpecRevision:
        return cls(
            model=str(item["model"]),
            revision=int(item["revision"]),
            fingerprint=str(item["fingerprint"]),
            document=json.loads(item["document"]),
            created_by=str(item["created_by"]),
            created_at=str(item["created_at"]),
            source=item.get("source"),
            changed=False,
        )


class SpecStore:
    """Stores and reads spec revisions in the registry table, audited.

    Parameters
    ----------
    registry
        The registry whose table, store, clock and audit trail to use.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def put(
        self, spec: ModelSpec, *, actor: str, source: str | None = None, request_id: str | None = None
    ) -> SpecRevision:
        """Store ``spec`` as the model's next revision (unless it equals the latest one).

        Parameters
        ----------
        spec
            A validated spec.
        actor
            Who stores it.
        source
            Where it came from (a file name), kept for people reading the history.

        Returns
        -------
        SpecRevision
            The new revision (``changed`` True) or the identical latest one (``changed`` False).

        Raises
        ------
        SpecError
            ``training.params`` or ``training.search.space`` names a parameter the estimator does
            not take (each named by its path, with the valid names); nothing is stored.
        """
        # Here, not at the top: the check imports scikit-learn, which readers of specs never need.
        from mlops.errors import SpecError
        from mlops.spec.estimators import check_estimator_params
        from mlops.spec.model import pipeline_problems

        check_actor(actor)
        check_estimator_params(spec, source=source)
        problems = pipeline_problems(spec)
        if problems:
            raise SpecError("; ".join(f"{source}: {problem}" if source else problem for problem in problems))
        model = spec.name
        fingerprint = spec.fingerprint()
        latest = self._latest(model)
        if latest is not None and latest.fingerprint == fingerprint:
            return latest
        revision = self.registry.allocate(model, "spec_counter", actor=actor)
        now = self.registry.clock()
        stored = SpecRevision(
            model=model,
            revision=revision,
            fingerprint=fingerprint,
            document=json.loads(spec.canonical_json()),
            created_by=actor,
            created_at=now,
            source=source,
        )
        item = {
            **spec_key(model, revision),
            "kind": "spec",
            "model": model,
            "revision": revision,
            "fingerprint": fingerprint,
            # Kept as text: the canonical JSON is what the fingerprint was computed from.
            "document": spec.canonical_json(),
            "created_by": actor,
            "created_at": now,
            "source": source,
        }
        self.registry.audit.append(
            model,
            actor=actor,
            action="spec.put",
            subject=f"model/{model}/spec/{revision}",
            before={"revision": latest.revision, "fingerprint": latest.fingerprint} if latest else None,
            after={"revision": revision, "fingerprint": fingerprint, "source": source},
            request_id=request_id,
            with_ops=[Put(self.registry.table, item, Condition(item_exists=False))],
        )
        return stored

    def _latest(self, model: str) -> SpecRevision | None:
        page = self.registry.store.query(
            self.registry.table, model_items(model), sk_prefix=sk_prefix(SPEC_SK_PREFIX), forward=False, limit=1
        )
        return SpecRevision.from_item(page.items[0]) if page.items else None

    def get(self, model: str, revision: int | None = None) -> SpecRevision:
        """One revision (the latest when ``revision`` is None).

        Raises
        ------
        NotFoundError
            The model has no spec, or not that revision.
        """
        check_model_name(model)
        if revision is None:
            latest = self._latest(model)
            if latest is None:
                raise NotFoundError(f"model {model!r} has no spec (store one with `mlops spec put FILE`)")
            return latest
        item = self.registry.store.get(self.registry.table, spec_key(model, int(revision)))
        if item is None:
            raise NotFoundError(f"model {model!r} has no spec revision {revision}")
        return SpecRevision.from_item(item)

    def list(self, model: str, *, limit: int = 20, next_token: str | None = None) -> ResultPage:
        """Revisions of a model, newest first."""
        check_model_name(model)
        start = decode_token(next_token, model_partition(model)) if next_token else None
        page = self.registry.store.query(
            self.registry.table,
            model_items(model),
            sk_prefix=sk_prefix(SPEC_SK_PREFIX),
            forward=False,
            limit=limit,
            start=start,
        )
        token = encode_token(page.last_key) if page.last_key and len(page.items) == limit else None
        return ResultPage([SpecRevision.from_item(item) for item in page.items], token)
