"""The bounded model cache: loaded versions by (model, version), least recently used out over a byte budget."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops.serving.predictors import Predictor
from mlops.serving.requests import RequestModels
from mlops.spec.view import SpecView

if TYPE_CHECKING:
    from mlops.spec.model import ModelSpec


@dataclass
class LoadedModel:
    """A model version ready to predict, with the request models of its spec."""

    model: str
    version: int
    predictor: Predictor
    requests: RequestModels
    spec: ModelSpec | SpecView

    @property
    def nbytes(self) -> int:
        return int(self.predictor.nbytes)


class ModelCache:
    """Loaded models by ``(model, version)``, least recently used out once over ``budget_bytes``.

    The entry just added is never evicted, so one model larger than the budget still serves.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.entries: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> LoadedModel | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self.entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, entry: LoadedModel) -> None:
        key = (entry.model, entry.version)
        with self.lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            self.entries[key] = entry
            self.nbytes += entry.nbytes
            while self.nbytes > self.budget_bytes and len(self.entries) > 1:
                _, evicted = self.entries.popitem(last=False)
                self.nbytes -= evicted.nbytes
                self.evictions += 1

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self.entries
