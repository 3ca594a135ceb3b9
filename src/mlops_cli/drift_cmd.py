"""``mlops drift REFERENCE CURRENT --spec SPEC``: compare a window with the training reference, offline.

Exit codes: 0 compared (drift or not), 1 drift found and ``--fail-on-drift`` given, 2 an input
cannot be read (data, profile or spec).
"""

from __future__ import annotations

from pathlib import Path

import click

from mlops.errors import CheckFailedError, InputError
from mlops.spec.model import load_spec
from mlops_cli.common import AppContext, emit, json_option, pass_app


@click.command("drift")
@click.argument("reference", metavar="REFERENCE", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("current", metavar="CURRENT", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--spec",
    "spec_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model spec (YAML or JSON): feature types, drift methods, monitoring thresholds.",
)
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the HTML report here."
)
@click.option("--prediction-column", help="A column holding the model's outputs in both files: prediction drift.")
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when the verdict is drift.")
@json_option
@pass_app
def command(
    app: AppContext,
    reference: Path,
    current: Path,
    spec_path: Path,
    html_path: Path | None,
    prediction_column: str | None,
    fail_on_drift: bool,
) -> None:
    """Compare CURRENT (a CSV or gzip CSV window) with REFERENCE (the training CSV, or its saved profile JSON).

    Prints one line per feature, worst first; --json prints the whole report document.
    """
    # Here, not at the top: the drift engine (scipy, pandas: about 1.7 s) only when the command runs, not for --help.
    from mlops.drift import Reference, drift_report, read_window, render_html

    spec = load_spec(spec_path)
    ref = Reference.load(reference, spec)
    extra = [prediction_column] if prediction_column else []
    frame = read_window(current, spec, extra=extra)
    reference_predictions = None
    if prediction_column:
        if not str(reference).endswith(".json") and not ref.source.endswith(".json"):
            ref_frame = read_window(reference, spec, extra=extra)
            if prediction_column in ref_frame.columns:
                reference_predictions = ref_frame[prediction_column].to_numpy()
        if reference_predictions is None or prediction_column not in frame.columns:
            raise InputError(f"--prediction-column {prediction_column}: the column must be in both CSV files")
    report = drift_report(
        ref,
        frame,
        spec,
        current_source=str(current),
        reference_predictions=reference_predictions,
        current_predictions=frame[prediction_column].to_numpy() if prediction_column else None,
    )
    if html_path is not None:
        try:
            html_path.write_text(render_html(report), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{html_path}: cannot be written ({exc.strerror or exc})") from None
    emit(app, report.model_dump(mode="json"), report.render_text())
    if html_path is not None and not app.as_json:
        click.echo(f"HTML report: {html_path}", err=True)
    if report.drifted and fail_on_drift:
        raise CheckFailedError(
            f"drift in {', '.join(report.drifted_features + report.missing_rate_alerts) or 'the window'}"
        )
