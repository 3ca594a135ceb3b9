"""Real public datasets for the conformance suite, read from the PyPI packages that ship them.

No file here is generated: each dataset is the CSV its package ships (ISLP's ``ISLP/data/``,
palmerpenguins' ``palmerpenguins/data/``), read with :mod:`importlib.resources`, in the column
order it ships in, with its missing values (``NA``) and its duplicate rows. Each has a spec written
for it by hand under ``tests/conformance/specs/``.

Subsets (training rows and held-back rows) are cut from the file's own lines, so the bytes a test
uploads are the bytes the package ships: the same quoting, number formatting and ``NA`` strings.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops.spec.model import ModelSpec, load_spec

SPECS = Path(__file__).resolve().parent / "specs"


@dataclass(frozen=True)
class RealDataset:
    """One CSV shipped inside an installed package, and the spec written for it."""

    key: str
    package: str
    resource: str
    spec_file: str
    # Rows kept out of the training upload: sent as predictions, then labelled, then monitored.
    held_back: int
    # A floor the model must clear on the held-back rows (from the served answers): accuracy for
    # classification (roc_auc for a skewed binary target), r2 for regression.
    quality_metric: str
    quality_floor: float

    @property
    def spec_path(self) -> Path:
        return SPECS / self.spec_file

    @property
    def spec(self) -> ModelSpec:
        return _spec(self.spec_path)

    @property
    def target(self) -> str:
        return self.spec.target.name

    def raw(self) -> bytes:
        """The file's bytes exactly as the package ships them."""
        return _raw(self.package, self.resource)

    def frame(self) -> pd.DataFrame:
        """The file as pandas reads it by default (``NA`` is missing), in its shipped column order."""
        return pd.read_csv(io.BytesIO(self.raw()))

    def lines(self) -> tuple[bytes, list[bytes]]:
        """The header line and one line per data row (none of these files quotes a line break)."""
        header, *rows = self.raw().splitlines(keepends=True)
        if not rows[-1].endswith(b"\n"):
            rows[-1] += b"\n"
        return header, rows

    def held_back_rows(self) -> np.ndarray:
        """Row positions (0-based, in file order) kept out of training: every k-th row of the file.

        An evenly spaced sample, not a random draw: a random draw of rows is, by design, a shifted
        sample for a test at level 5% one time in twenty (ISLP Default's 400 rows of
        ``default_rng(14)`` have a KS p-value of 0.005 on balance, against the other rows and by
        permutation alike), which would make a test of "no drift on the same data" a test of the
        seed. How often the drift check alarms over many random draws is what
        ``benchmarks/bench_drift_false_alarms.py`` measures.
        """
        rows = len(self.lines()[1])
        return np.unique(np.round(np.linspace(0, rows - 1, self.held_back)).astype(int))

    def training_bytes(self) -> bytes:
        """The shipped file without the held-back rows: same header, same lines, same order."""
        header, rows = self.lines()
        held = set(self.held_back_rows().tolist())
        return header + b"".join(line for i, line in enumerate(rows) if i not in held)

    def held_back_frame(self) -> pd.DataFrame:
        return self.frame().iloc[self.held_back_rows()].reset_index(drop=True)

    def records(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """Request records as an application sends them: the spec's features only, JSON types, null for NA."""
        features = self.spec.feature_names
        return list(json.loads(frame[features].to_json(orient="records")))


@cache
def _raw(package: str, resource: str) -> bytes:
    return resources.files(package).joinpath(*resource.split("/")).read_bytes()


@cache
def _spec(path: Path) -> ModelSpec:
    return load_spec(path)


# Binary classification, target first in the file as shipped, 3.3% positives, label base rates
# that differ between the protected groups.
DEFAULT = RealDataset("islp-default", "ISLP", "data/Default.csv", "islp-default.yaml", 400, "roc_auc", 0.9)
# Multiclass with missing values (NA), target first.
PENGUINS = RealDataset(
    "palmer-penguins", "palmerpenguins", "data/penguins.csv", "palmerpenguins.yaml", 100, "accuracy", 0.9
)
# Regression, target last, two extra columns (which sum to the target) between features and target.
BIKESHARE = RealDataset("islp-bikeshare", "ISLP", "data/Bikeshare.csv", "islp-bikeshare.yaml", 400, "r2", 0.8)
# Binary classification, 85 features, 6% positives, 602 rows that repeat an earlier row exactly.
CARAVAN = RealDataset("islp-caravan", "ISLP", "data/Caravan.csv", "islp-caravan.yaml", 400, "roc_auc", 0.65)

ALL = (DEFAULT, PENGUINS, BIKESHARE, CARAVAN)
