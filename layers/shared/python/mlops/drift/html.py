"""A self-contained HTML page of a drift report: verdict, table, and one overlay per feature.

Charts are drawn with matplotlib into inline SVG (no script, no network, no external file).
matplotlib is imported only here, only when a page is rendered; where it is not installed
(the Lambda layer keeps to the scientific core) the same overlays are written as plain SVG.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable
from datetime import UTC, datetime

from mlops.drift.report import Distribution, DriftReport, FeatureDrift

REFERENCE_COLOR = "#4c72b0"
CURRENT_COLOR = "#dd8452"


def render_html(report: DriftReport, *, charts: str = "auto") -> str:
    """The report as one HTML document; features sorted worst first, each with its overlay.

    Parameters
    ----------
    report
        A :class:`DriftReport`.
    charts
        ``"auto"`` (matplotlib when importable, else plain SVG), ``"matplotlib"`` or ``"svg"``.
    """
    draw = _chart_function(charts)
    rows = [*report.features, *([report.prediction] if report.prediction is not None else [])]
    rows.sort(key=lambda f: (not f.drifted, -f.score, f.name))
    title = f"Drift report: {report.model}"
    verdict_class = {"drifted": "bad", "no_drift": "good", "too_small": "warn"}[report.verdict]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="verdict {verdict_class}">{_e(report.verdict.replace("_", " ").upper())}: '
        f"{len(report.drifted_features)} of {report.compared} compared feature(s) drifted"
        + (
            f"; missing-rate change in {_e(', '.join(report.missing_rate_alerts))}"
            if report.missing_rate_alerts
            else ""
        )
        + "</p>",
        "<table class='meta'>",
        f"<tr><th>reference</th><td>{_e(report.reference.source)}</td><td>{report.reference.rows:,} rows"
        + ("" if report.reference.exact else " (profile: numeric tests on its sample)")
        + "</td></tr>",
        f"<tr><th>current</th><td>{_e(report.current.source)}</td><td>{report.current.rows:,} rows</td></tr>",
        f"<tr><th>settings</th><td colspan=2>{_e(_settings_text(report))}</td></tr>",
        f"<tr><th>created</th><td colspan=2>{_e(report.created_at)} ({report.seconds:.2f}s)</td></tr>",
        "</table>",
    ]
    for note in report.notes:
        parts.append(f"<p class='note'>{_e(note)}</p>")
    if report.performance is not None:
        parts.append(_performance_table(report))
    parts.append(
        "<h2>Features, worst first</h2><table class='features'><tr><th>feature</th><th>status</th>"
        "<th>method</th><th>statistic</th><th>p-value (adjusted)</th><th>threshold / alpha</th>"
        "<th>severity</th><th>missing (ref &rarr; cur)</th></tr>"
    )
    for feature in rows:
        parts.append(_table_row(feature))
    parts.append("</table>")
    for feature in rows:
        parts.append(_feature_section(feature, draw))
    parts.append("</body></html>")
    return "\n".join(parts)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.4g}"


def _settings_text(report: DriftReport) -> str:
    s = report.settings
    return (
        f"too small at <= {s.min_rows} rows; tests (KS, chi-square, alpha {s.p_value}, {s.multiple_testing}) up to "
        f"{s.large_window_rows:,} rows, effect sizes above (distance >= {s.distance_threshold}, PSI >="
        f" {s.psi_threshold}); "
        f"missing-rate change limit {s.max_missing_rate_change}"
    )


def _table_row(feature: FeatureDrift) -> str:
    css = "bad" if feature.drifted else ("warn" if feature.missing is not None and feature.missing.flagged else "")
    level = feature.threshold if feature.judged_by == "threshold" else feature.alpha
    p_text = "&ndash;" if feature.p_value is None else f"{_num(feature.p_value)} ({_num(feature.p_value_adjusted)})"
    missing = "&ndash;"
    if feature.missing is not None:
        missing = f"{feature.missing.reference:.1%} &rarr; {feature.missing.current:.1%}"
    return (
        f"<tr class='{css}'><td><a href='#f-{_e(feature.name)}'>{_e(feature.name)}</a></td>"
        f"<td>{_e(feature.status)}</td>"
        f"<td>{_e(feature.method or '')}</td><td>{_num(feature.statistic)}</td><td>{p_text}</td>"
        f"<td>{_num(level)}</td><td>{_e(feature.severity)}</td><td>{missing}</td></tr>"
    )


def _performance_table(report: DriftReport) -> str:
    perf = report.performance
    assert perf is not None
    rows = "".join(
        f"<tr class='{'bad' if m.degraded else 'warn' if m.verdict != 'ok' else ''}'><td>{_e(m.name)}</td>"
        f"<td>{_num(m.registered)}</td><td>{_num(m.current)}</td>"
        f"<td>{_change(m.change, m.relative)}</td>"
        f"<td>{_interval(m.interval, m.relative)}</td>"
        f"<td>{_change(-m.tolerance if not m.relative else m.tolerance, m.relative)}</td>"
        f"<td>{'&ndash;' if m.support is None else f'{m.support:,}'} {_e(m.support_of)}</td>"
        f"<td>{_e(m.verdict.replace('_', ' '))}</td><td>{_e(m.reason)}</td></tr>"
        for m in perf.metrics
    )
    level = "" if perf.metric_confidence is None else f", each bound at {perf.metric_confidence:.2%}"
    basis = (
        f"<p class='note'>confidence {perf.confidence:.0%} for the whole window{level} (Bonferroni); "
        f"holdout uncertainty from {_e(perf.holdout_basis)}; "
        f"{'served probabilities used' if perf.probabilities else 'no served probabilities'}</p>"
        if perf.confidence is not None
        else ""
    )
    notes = "".join(f"<p class='note'>{_e(note)}</p>" for note in perf.notes)
    return (
        f"<h2>Performance on {perf.rows:,} labelled row(s): {_e(perf.status.replace('_', ' '))}</h2>{basis}{notes}"
        "<table class='features'><tr><th>metric</th><th>registered</th><th>current</th><th>change</th>"
        "<th>interval of the change</th><th>tolerance</th><th>support</th><th>verdict</th><th>why</th></tr>"
        f"{rows}</table>"
    )


def _change(value: float | None, relative: bool) -> str:
    if value is None:
        return "&ndash;"
    return f"{value:+.1%}" if relative else f"{value:+.4f}"


def _interval(bounds: list[float | None] | None, relative: bool) -> str:
    if not bounds:
        return "&ndash;"
    low, high = bounds
    return f"[{_change(low, relative)}, {'&infin;' if high is None else _change(high, relative)}]"


def _feature_section(feature: FeatureDrift, draw: Callable[[Distribution, str], str]) -> str:
    parts = [
        f"<section id='f-{_e(feature.name)}'><h3>{_e(feature.name)} <small>{_e(feature.status)}, "
        f"severity {_e(feature.severity)}</small></h3>"
    ]
    if feature.methods:
        parts.append(
            "<p class='methods'>"
            + "; ".join(
                f"{_e(name)} {_num(m.statistic)}" + (f" (p {_num(m.p_value)})" if m.p_value is not None else "")
                for name, m in feature.methods.items()
            )
            + "</p>"
        )
    cats = feature.categories
    if cats is not None and (cats.unseen_count or cats.vanished_count):
        if cats.unseen_count:
            parts.append(
                f"<p>{cats.unseen_count} unseen categor{'y' if cats.unseen_count == 1 else 'ies'} "
                f"({cats.unseen_fraction:.1%} of the window): {_e(', '.join(cats.unseen))}</p>"
            )
        if cats.vanished_count:
            parts.append(
                f"<p>{cats.vanished_count} reference categor{'y' if cats.vanished_count == 1 else 'ies'} absent:"
                f" {_e(', '.join(cats.vanished))}</p>"
            )
    for note in feature.notes:
        parts.append(f"<p class='note'>{_e(note)}</p>")
    if feature.distribution is not None:
        parts.append("<div class='chart'>" + draw(feature.distribution, feature.name) + "</div>")
    parts.append("</section>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------ charts
def _chart_function(charts: str) -> Callable[[Distribution, str], str]:
    if charts not in ("auto", "matplotlib", "svg"):
        raise ValueError(f"charts must be auto, matplotlib or svg, not {charts!r}")
    if charts == "svg":
        return _svg_chart
    try:
        import matplotlib
    except ImportError:
        if charts == "matplotlib":
            raise
        return _svg_chart
    matplotlib.use("svg", force=True)
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable, readable by screen readers
    return _matplotlib_chart


def _edge_label(dist: Distribution, value: float) -> str:
    """A bin edge as the feature reads: a date for datetime features, else a short number."""
    if dist.unit == "epoch_seconds" and math.isfinite(value):
        span = (dist.edges[-1] - dist.edges[0]) if dist.edges else 0.0
        moment = datetime.fromtimestamp(value, UTC)
        return moment.strftime("%Y-%m-%d" if span > 2 * 86_400 else "%Y-%m-%d %H:%M")
    return f"{value:.4g}"


def _matplotlib_chart(dist: Distribution, name: str) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.0, 2.6))
    try:
        if dist.kind == "numeric":
            edges = dist.edges
            axes.stairs(dist.reference, edges, fill=True, alpha=0.45, color=REFERENCE_COLOR, label="reference")
            axes.stairs(dist.current, edges, fill=True, alpha=0.45, color=CURRENT_COLOR, label="current")
            axes.set_xlabel(name)
            if dist.unit == "epoch_seconds":
                from matplotlib.ticker import FuncFormatter

                axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _edge_label(dist, value)))
        else:
            positions = range(len(dist.labels))
            width = 0.4
            axes.bar(
                [p - width / 2 for p in positions], dist.reference, width, color=REFERENCE_COLOR, label="reference"
            )
            axes.bar([p + width / 2 for p in positions], dist.current, width, color=CURRENT_COLOR, label="current")
            axes.set_xticks(list(positions), [label[:18] for label in dist.labels], rotation=30, ha="right", fontsize=8)
        axes.set_ylabel("share of values")
        axes.legend(frameon=False, fontsize=8)
        axes.spines[["top", "right"]].set_visible(False)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    finally:
        plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inline


def _svg_chart(dist: Distribution, name: str) -> str:
    """A plain-SVG overlay (the fallback where matplotlib is not installed)."""
    width, height, left, bottom, top = 640.0, 200.0, 48.0, 36.0, 10.0
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([*dist.reference, *dist.current, 1e-12])
    n = len(dist.reference)
    shapes = []
    for values, color, offset in ((dist.reference, REFERENCE_COLOR, 0.0), (dist.current, CURRENT_COLOR, 0.5)):
        for i, value in enumerate(values):
            bar_h = plot_h * value / peak
            if dist.kind == "numeric":
                x, w = left + plot_w * i / n, plot_w / n
            else:
                x, w = left + plot_w * (i + 0.1 + offset * 0.8) / n, plot_w * 0.4 / n
            shapes.append(
                f"<rect x='{x:.1f}' y='{top + plot_h - bar_h:.1f}' width='{w:.1f}' height='{bar_h:.1f}' "
                f"fill='{color}' fill-opacity='{0.45 if dist.kind == 'numeric' else 0.9}'/>"
            )
    labels = []
    if dist.kind == "numeric" and dist.edges:
        for i in (0, n // 2, n):
            labels.append(
                f"<text x='{left + plot_w * i / n:.1f}' y='{height - bottom + 14:.1f}' font-size='10'"
                f" text-anchor='middle'>{_e(_edge_label(dist, dist.edges[i]))}</text>"
            )
    else:
        for i, label in enumerate(dist.labels):
            labels.append(
                f"<text x='{left + plot_w * (i + 0.5) / n:.1f}' y='{height - bottom + 14:.1f}' font-size='9'"
                f" text-anchor='middle'>{_e(label[:12])}</text>"
            )
    labels.append(f"<text x='4' y='{top + 10:.1f}' font-size='10'>{peak:.2g}</text>")
    legend = (
        f"<rect x='{width - 170}' y='4' width='10' height='10' fill='{REFERENCE_COLOR}'/><text x='{width - 156}'"
        f" y='13' font-size='10'>reference</text>"
        f"<rect x='{width - 90}' y='4' width='10' height='10' fill='{CURRENT_COLOR}'/><text x='{width - 76}' y='13'"
        f" font-size='10'>current</text>"
    )
    axis = f"<line x1='{left}' y1='{top + plot_h}' x2='{left + plot_w}' y2='{top + plot_h}' stroke='#333'/>"
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' role='img' "
        f"aria-label='{_e(name)}: reference vs current'>" + "".join(shapes) + axis + "".join(labels) + legend + "</svg>"
    )


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em}h3{font-size:1.05em;margin-bottom:.3em}
small{color:#666;font-weight:normal}
.verdict{font-size:1.15em;font-weight:600;padding:.5em .8em;border-radius:4px}
.good{background:#e6f4ea}.bad{background:#fce8e6}.warn{background:#fef7e0}
table{border-collapse:collapse;font-size:.9em}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}
table.meta th{color:#555}.note{color:#666;font-size:.9em}.methods{font-family:ui-monospace,monospace;font-size:.85em}
section{border-top:1px solid #eee;margin-top:1em}
"""
