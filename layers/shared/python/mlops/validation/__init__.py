"""Dataset validation against a model spec: fast, chunked, and every problem explained.

Examples
--------
>>> from mlops.spec import load_spec
>>> from mlops.validation import validate_file
>>> report = validate_file("data.csv", load_spec("spec.yaml"))  # doctest: +SKIP
>>> report.valid, [c.check for c in report.failures]  # doctest: +SKIP
(False, ['column.min'])
"""

from mlops.validation.api import schema_fingerprint, validate_file, validate_frame, validate_stream
from mlops.validation.engine import ValidationOptions
from mlops.validation.report import SCHEMA_VERSION, CheckResult, Example, SourceInfo, Status, ValidationReport

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
