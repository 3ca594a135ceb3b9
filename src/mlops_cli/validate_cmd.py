"""``mlops validate DATA --spec SPEC``: check a dataset against a model spec, offline.

Exit codes: 0 valid, 1 a check failed, 2 the data cannot be read at all or the spec (or
reference profile) is invalid.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mlops.data.profile import ReferenceProfile
from mlops.data.validation import ValidationReport, validate_file, validate_stream
from mlops.errors import CheckFailedError, InputError
from mlops.spec.estimators import check_estimator_params
from mlops.spec.model import load_spec
from mlops_cli.common import AppContext, emit, json_option, pass_app


@click.command("validate")
@click.argument("data", metavar="DATA")
@click.option(
    "--spec",
    "spec_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model spec (YAML or JSON) the data must meet.",
)
@click.option(
    "--reference",
    "reference_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Reference profile (JSON) of the training data: enables mean/std, category and missing-rate checks.",
)
@click.option(
    "--max-examples", type=click.IntRange(0, 1000), default=5, show_default=True, help="Failing rows shown per check."
)
@click.option("--show-passed", is_flag=True, help="List passed checks too (text output).")
@json_option
@pass_app
def command(
    app: AppContext, data: str, spec_path: Path, reference_path: Path | None, max_examples: int, show_passed: bool
) -> None:
    """Validate DATA (a CSV or gzip CSV file, or - for standard input) against a model spec.

    Prints every failed check with example rows; --json prints the whole report document.
    """
    spec = load_spec(spec_path)
    check_estimator_params(spec, source=str(spec_path))  # the check `spec put` makes: same message
    reference = ReferenceProfile.load(reference_path) if reference_path is not None else None
    if data == "-":
        report = validate_stream(sys.stdin.buffer, spec, "<stdin>", reference, max_examples)
    else:
        report = validate_file(data, spec, reference, max_examples)
    _finish(app, report, show_passed)


def _finish(app: AppContext, report: ValidationReport, show_passed: bool) -> None:
    emit(app, report.model_dump(mode="json"), report.render_text(show_passed=show_passed).rstrip("\n"))
    failed = len(report.failures)
    if not report.readable:
        raise InputError(f"{report.source.name}: the data cannot be read ({failed} reading problem(s) above)")
    if not report.valid:
        raise CheckFailedError(f"{report.source.name}: {failed} check(s) failed")
