"""Drift detection: a current window of model inputs (and outputs) against the training reference.

Examples
--------
>>> from mlops.drift import drift_report, render_html
>>> report = drift_report("train.csv", "window.csv", spec)  # doctest: +SKIP
>>> report.verdict  # doctest: +SKIP
'drifted'
>>> Path("drift.html").write_text(render_html(report))  # doctest: +SKIP
"""

from mlops.drift.compare import DriftOptions
from mlops.drift.engine import drift_report, prediction_drift
from mlops.drift.estimates import Holdout
from mlops.drift.html import render_html
from mlops.drift.performance import performance_drift
from mlops.drift.report import DriftReport, FeatureDrift, PerformanceDrift
from mlops.drift.sides import Reference, as_reference, read_window
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
