"""Drift detection: a current window of model inputs (and outputs) against the training reference.

Examples
--------
>>> from mlops.drift import drift_report, render_html
>>> report = drift_report("train.csv", "window.csv", spec)  # doctest: +SKIP
>>> report.verdict  # doctest: +SKIP
'drifted'
>>> Path("drift.html").write_text(render_html(report))  # doctest: +SKIP
"""

from mlops.drift.engine import (
    DriftOptions,
    Reference,
    as_reference,
    drift_report,
    prediction_drift,
    read_window,
)
from mlops.drift.html import render_html
from mlops.drift.performance import Holdout, performance_drift
from mlops.drift.report import DriftReport, FeatureDrift, PerformanceDrift
from mlops.training.holdout import holdout_document  # written at registration, read here

__all__ = [
    "DriftOptions",
    "DriftReport",
    "FeatureDrift",
    "Holdout",
    "PerformanceDrift",
    "Reference",
    "as_reference",
    "drift_report",
    "holdout_document",
    "performance_drift",
    "prediction_drift",
    "read_window",
    "render_html",
]
