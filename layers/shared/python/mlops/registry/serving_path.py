"""Which path serves a registered version: ``onnx`` (onnxruntime) or ``python`` (the scientific stack).

A version is registered with its pickled pipeline (always) and, when skl2onnx can convert it and the
export answers like scikit-learn on the holdout, an ONNX export. The Register state records the
path in the version's tags (:data:`SERVING_PATH_TAG`), and why there is no ONNX export
(``onnx_error``) when there is none. A version registered before the tag existed is served by the
path its tags imply: ``onnx`` with an ONNX export, else ``python``.

- ``onnx``: the inference function (``functions/inference``: numpy and onnxruntime, no
  scikit-learn) runs the export;
- ``python``: the inference function validates, routes and captures the request as for any
  version, and invokes the fallback function (``functions/inference_fallback``: the scientific
  layer) with the validated records; it loads the pickle through the restricted unpickler
  (:func:`mlops.training.artifacts.load_artifact`, sha256 checked, allow-listed classes only).

:data:`COLD_STARTS` are the measured cold starts of each path, with where each number comes from
(``benchmarks/bench_fallback.py``); the model card and ``mlops models show`` print them.

Examples
--------
>>> serving_path({"onnx_uri": "s3://b/k.onnx", "onnx_sha256": "ab"})
'onnx'
>>> serving_path({"onnx_error": "no converter for SplineTransformer"})
'python'
>>> serving_path({SERVING_PATH_TAG: "python", "onnx_uri": "s3://b/k.onnx"})
'python'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ServingPath = Literal["onnx", "python"]
SERVING_PATH_TAG = "serving_path"
ONNX_ERROR_TAG = "onnx_error"
PATHS: tuple[ServingPath, ...] = ("onnx", "python")


def serving_path(tags: Mapping[str, str] | None) -> ServingPath:
    """The path that serves a version with these tags (the recorded one, else the one its tags imply)."""
    tags = tags or {}
    recorded = tags.get(SERVING_PATH_TAG)
    if recorded == "python":
        return "python"
    if recorded == "onnx" or tags.get("onnx_uri"):
        return "onnx"
    return "python"


@dataclass(frozen=True)
class ColdStart:
    """A path's measured cold start (seconds) and where the number comes from."""

    function: str
    seconds: float
    measured_by: str

    def describe(self) -> str:
        return f"{self.seconds:.2f} s cold start ({self.function}; {self.measured_by})"


# Measured by `python benchmarks/bench_fallback.py --runs 5` on 2026-12-06 (docs/inference.md, "Two
# serving paths"): fresh interpreters with the functions' environment and the shared layer as
# deployed; import of the handler, the production service and the first request of the same
# 100-tree forest (its ONNX export, or its pickle); medians of 5 alternating runs on a 2-CPU x86_64
# machine at load average 14 (shared with other test runs), so both numbers are several times what
# an idle machine or Lambda takes (bench_inference.py measured the ONNX path at 0.18 s at load 2);
# their ratio (5.7x) is the comparable part.
_SOURCE = "benchmarks/bench_fallback.py, median of 5 fresh processes, 2-CPU machine at load 14"
COLD_STARTS: dict[ServingPath, ColdStart] = {
    "onnx": ColdStart("inference function, onnxruntime", 1.66, _SOURCE),
    "python": ColdStart("fallback function, scikit-learn: 5.7x the ONNX path's in the same run", 9.53, _SOURCE),
}


def describe_serving(tags: Mapping[str, str] | None) -> dict[str, str]:
    """The path, its cold start and (for ``python``) why there is no ONNX export: card and CLI lines."""
    path = serving_path(tags)
    described = {"serving_path": path, "cold_start": COLD_STARTS[path].describe()}
    reason = (tags or {}).get(ONNX_ERROR_TAG)
    if path == "python" and reason:
        described["why_not_onnx"] = " ".join(reason.split())  # skl2onnx's messages span lines
    return described


__all__ = [
    "COLD_STARTS",
    "ONNX_ERROR_TAG",
    "PATHS",
    "SERVING_PATH_TAG",
    "ColdStart",
    "ServingPath",
    "describe_serving",
    "serving_path",
]
