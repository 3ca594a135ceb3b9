"""Dataset validation against a model spec: fast, chunked, and every problem explained.

Examples
--------
>>> from mlops.spec.model import load_spec
>>> from mlops.data.validation import validate_file
>>> report = validate_file("data.csv", load_spec("spec.yaml"))  # doctest: +SKIP
>>> report.valid, [c.check for c in report.failures]  # doctest: +SKIP
(False, ['column.min'])
"""

from mlops.data.validation.api import schema_fingerprint, validate_file, validate_frame, validate_stream
from mlops.data.validation.options import ValidationOptions
from mlops.data.validation.report import SCHEMA_VERSION, CheckResult, Example, SourceInfo, Status, ValidationReport

__all__ = [
    "SCHEMA_VERSION",
    "CheckResult",
    "Example",
    "SourceInfo",
    "Status",
    "ValidationOptions",
    "ValidationReport",
    "schema_fingerprint",
    "validate_file",
    "validate_frame",
    "validate_stream",
]
