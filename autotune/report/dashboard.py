"""The run dashboard: one self-contained HTML page of plotly figures."""
from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from autotune.compress.report import COLUMNS, row_cells, rows_from_json, table_note
from autotune.config import Experiment
from autotune.report.records import TrialRecord, pareto_front, progress

COST_AXES = (("flash_kb", "flash (KB)", "max_flash_kb"), ("ram_kb", "RAM (KB)", "max_ram_kb"),
             ("latency_ms", "latency (ms)", "max_latency_ms"))


def accuracy_text(m: dict, prefix: str) -> str:
    """"0.953 (95% CI 0.907-0.977, n=150)": an accuracy with its evidence."""
    low, high = m[f"{prefix}_ci95"]
    spread = f", fold std {m[f'{prefix}_fold_std']:.3f}" if f"{prefix}_fold_std" in m else ""
    return f"{m[prefix]:.3f} (95% CI {low:.3f}-{high:.3f}, n={m[f'{prefix}_n']}{spread})"


def _hover(r: TrialRecord) -> str:
    m = r.metrics
    lines = [f"trial {r.number}", f"validation accuracy {accuracy_text(m, 'accuracy')}",
             f"test accuracy {accuracy_text(m, 'test_accuracy')}", f"flash {m['flash_kb']:.1f} KB",
             f"RAM {m['ram_kb']:.1f} KB", f"latency {m['latency_ms']:.2f} ms",
             f"params {m['params_count']:,}", f"MACs {m['macs']:,}"]
    lines += [f"{k} = {v}" for k, v in sorted(r.params.items())]
    return "<br>".join(html.escape(line) for line in lines)


def front_figure(records: list[TrialRecord], experiment: Experiment, useful: float | None = None) -> go.Figure:
    """Accuracy against each cost: all trials, infeasible ones marked, the front highlighted,
    the useful-accuracy threshold (`useful`) as a line."""
    complete = [r for r in records if r.complete]
    front = {r.number for r in pareto_front(records, experiment.objectives)}
    groups = (
        ("feasible", [r for r in complete if r.feasible and r.number not in front],
         dict(color="#7f8c8d", size=7, opacity=0.6)),
        ("infeasible", [r for r in complete if not r.feasible], dict(color="#e67e22", size=7, symbol="x")),
        ("Pareto front", [r for r in complete if r.number in front],
         dict(color="#c0392b", size=11, line=dict(color="black", width=1))),
    )
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[f"accuracy vs {label}" for _, label, _ in COST_AXES])
    limits = experiment.constraints
    for col, (attr, label, limit_name) in enumerate(COST_AXES, start=1):
        for name, group, marker in groups:
            fig.add_trace(go.Scatter(
                x=[r.metrics[attr] for r in group], y=[r.metrics["accuracy"] for r in group],
                mode="markers", name=name, legendgroup=name, showlegend=col == 1, marker=marker,
                hovertext=[_hover(r) for r in group], hoverinfo="text"), row=1, col=col)
        limit = getattr(limits, limit_name)
        if limit is not None:
            fig.add_vline(x=limit, line=dict(color="#2c3e50", dash="dash"), row=1, col=col,
                          annotation_text=f"limit {limit:g}", annotation_position="top left")
        if useful is not None:
            label_it = dict(annotation_text=f"min accuracy {useful:.2f}", annotation_position="bottom right")
            fig.add_hline(y=useful, line=dict(color="#7f8c8d", dash="dot"), row=1, col=col,
                          **(label_it if col == 1 else {}))
        fig.update_xaxes(title_text=label, row=1, col=col)
    fig.update_yaxes(title_text="validation accuracy (int8 model)", row=1, col=1)
    fig.update_layout(title=f"{experiment.name}: accuracy vs cost on {experiment.target}", height=480,
                      template="plotly_white")
    return fig


def _param_dimension(name: str, values: list) -> dict:
    """A parallel-coordinates axis: numbers as they are; booleans, strings and parameters a trial
    does not have (e.g. filters of a fourth block) as ordered categories."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return dict(label=name, values=values)
    labels = sorted({str(v) for v in values}, key=lambda t: (t == "none", t))
    code = {t: i for i, t in enumerate(labels)}
    return dict(label=name, values=[code[str(v)] for v in values], tickvals=list(range(len(labels))),
                ticktext=labels)


def parallel_figure(records: list[TrialRecord], experiment: Experiment) -> go.Figure:
    complete = [r for r in records if r.complete]
    names = sorted({k for r in complete for k in r.params})
    dims = [_param_dimension(k, [r.params.get(k, "none") for r in complete]) for k in names]
    dims += [dict(label=label, values=[r.metrics[attr] for r in complete])
             for attr, label, _ in COST_AXES]
    dims.append(dict(label="accuracy", values=[r.metrics["accuracy"] for r in complete]))
    fig = go.Figure(go.Parcoords(
        name="trials", dimensions=dims,
        line=dict(color=[r.metrics["accuracy"] for r in complete], colorscale="Viridis", showscale=True)))
    fig.update_layout(title="parameters and objectives of every completed trial", height=480,
                      template="plotly_white")
    return fig


def hypervolume_figure(runs: dict[str, tuple[list[TrialRecord], Experiment]]) -> go.Figure:
    """Hypervolume over trials and over search minutes, one line per run (autotune report RUN1 RUN2)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("over trials", "over search time"))
    for name, (records, experiment) in runs.items():
        points = progress(records, experiment)
        hv = [p.hypervolume for p in points]
        fig.add_trace(go.Scatter(x=[p.trials for p in points], y=hv, mode="lines+markers", name=name,
                                 legendgroup=name), row=1, col=1)
        fig.add_trace(go.Scatter(x=[p.minutes for p in points], y=hv, mode="lines+markers", name=name,
                                 legendgroup=name, showlegend=False), row=1, col=2)
    fig.update_xaxes(title_text="trials counted against the budget", row=1, col=1)
    fig.update_xaxes(title_text="minutes (trial durations, rejections included)", row=1, col=2)
    fig.update_yaxes(title_text="hypervolume", row=1, col=1)
    fig.update_layout(title="hypervolume of the feasible front (objectives scaled by the limits, reference point "
                            "at the limits)", height=400, template="plotly_white")
    return fig


def figures(records: list[TrialRecord], experiment: Experiment, study_attrs: dict) -> dict[str, go.Figure]:
    return {"fronts": front_figure(records, experiment, study_attrs.get("min_accuracy")),
            "parameters": parallel_figure(records, experiment),
            "hypervolume": hypervolume_figure({experiment.name: (records, experiment)})}


def summary_lines(records: list[TrialRecord], experiment: Experiment, study_attrs: dict) -> list[str]:
    """The run in a few sentences: what was searched, what the accuracies rest on, the best point."""
    front = pareto_front(records, experiment.objectives)
    data = study_attrs.get("data", {})
    counts = {s: sum(r.state == s for r in records) for s in ("COMPLETE", "STOPPED", "REJECTED", "FAIL", "PRUNED")}
    lines = [f"{experiment.family} models for {experiment.target}: {counts['COMPLETE']} trained trials, "
             f"{sum(r.feasible for r in records)} feasible, {len(front)} on the Pareto front; "
             f"{counts['STOPPED']} early-stopped after a short training (partial accuracy, never on the front), "
             f"{counts['REJECTED']} rejected over a hard limit before training, {counts['FAIL']} failed, "
             f"{counts['PRUNED']} duplicate draws re-sampled."]
    if data:
        lines.append(f"Validation: {data['validation']}. Test: {data['test']}, {data['n_test']} examples"
                     + (" (few: the test accuracy is a rough guide)" if data["n_test"] < 100 else "") + ".")
    if "min_accuracy" in study_attrs:
        lines.append(f"A trial is useful when its validation accuracy reaches {study_attrs['min_accuracy']:.3f} "
                     f"(majority class {data.get('majority_rate', float('nan')):.3f}); others are infeasible.")
    if front:
        best = max(front, key=lambda r: r.metrics["accuracy"])
        m = best.metrics
        lines.append(f"Best front point: trial {best.number}, validation accuracy {accuracy_text(m, 'accuracy')}, "
                     f"test accuracy {accuracy_text(m, 'test_accuracy')}, flash {m['flash_kb']:.1f} KB, "
                     f"RAM {m['ram_kb']:.1f} KB, latency {m['latency_ms']:.2f} ms.")
    lines.append("Accuracy is measured on the int8 model; costs say in trials.csv and pareto.json whether they "
                 "were predicted or measured, and by what.")
    return lines


PROFILE_COLUMNS = (("op", "op", None), ("kernel", "kernel", None), ("MACs", "macs", 0), ("cycles", "cycles", 0),
                   ("us", "microseconds", 1), ("MACs/cycle", "macs_per_cycle", 2), ("weight bytes", "weight_bytes", 0))


def exports_html(exports: list[dict]) -> str:
    """Per exported bundle: per simulated target, a table of its kernel calls (autotune.profile);
    the storage of each weight tensor (autotune.compress.report)."""
    def cell(v, digits):
        return "-" if v is None else html.escape(str(v)) if digits is None else f"{v:,.{digits}f}"

    parts = []
    for e in exports:
        for target, p in e["profiles"].items():
            rows = "".join("<tr>" + "".join(f"<td>{cell(c[key], d)}</td>" for _, key, d in PROFILE_COLUMNS) + "</tr>"
                           for c in p["calls"])
            head = "".join(f"<th>{name}</th>" for name, _, _ in PROFILE_COLUMNS)
            parts.append(f"<h3>trial {e['trial']} on {html.escape(target)}: {cell(p['cycles'], 0)} cycles</h3>"
                         f"<p>{html.escape(e['bundle'])}; {html.escape(p['source'])}</p>"
                         f"<table border='1' cellpadding='3' style='border-collapse:collapse'><tr>{head}</tr>"
                         f"{rows}</table>")
        if e.get("weights"):  # exports.json before weight storage was recorded has none
            rows = rows_from_json(e["weights"])
            body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row_cells(r)) + "</tr>" for r in rows)
            head = "".join(f"<th>{html.escape(name)}</th>" for name in COLUMNS)
            parts.append(f"<h3>trial {e['trial']}: weight storage by layer</h3>"
                         f"<table border='1' cellpadding='3' style='border-collapse:collapse'><tr>{head}</tr>"
                         f"{body}</table><p>{html.escape(table_note(rows))}</p>")
    return "<h2>Exported points: kernel calls and weight storage</h2>" + "".join(parts) if parts else ""


def dashboard_html(records: list[TrialRecord], experiment: Experiment, study_attrs: dict | None = None,
                   exports: list[dict] | None = None) -> str:
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0))
             for i, fig in enumerate(figures(records, experiment, study_attrs or {}).values())]
    summary = "".join(f"<p>{html.escape(line)}</p>" for line in summary_lines(records, experiment, study_attrs or {}))
    head = f"<h1>autotune: {html.escape(experiment.name)}</h1>{summary}"
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>autotune "
            f"{html.escape(experiment.name)}</title></head><body style='font-family:sans-serif'>"
            f"{head}{''.join(parts)}{exports_html(exports or [])}</body></html>")


def run_label(experiment: Experiment) -> str:
    """A run as comparisons name it: its name and how it searched."""
    extras = [x for x, on in (("starting points", experiment.starting_points),
                              ("early stop", experiment.early_stop is not None)) if on]
    return f"{experiment.name} ({' + '.join([experiment.sampler, *extras])})"


def comparison_html(runs: list[tuple[list[TrialRecord], Experiment]]) -> str:
    """Several runs side by side (`autotune report RUN1 RUN2 ...`): hypervolume over trials and
    over search time, one line per run, and a table of where each ended."""
    labelled = {run_label(e): (records, e) for records, e in runs}
    rows = []
    for label, (records, e) in labelled.items():
        points = progress(records, e)
        last = points[-1] if points else None
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            label, e.target, len(points), sum(r.state == "STOPPED" for r in records),
            sum(r.state == "REJECTED" for r in records), f"{last.hypervolume:.4f}" if last else "-",
            f"{last.minutes:.1f}" if last else "-")) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("run (sampler)", "target", "trials", "early-stopped",
                                             "rejected before training", "hypervolume", "minutes"))
    note = ("Hypervolumes compare between runs with the same limits and objectives (the reference point "
            "is the limits).")
    figure = hypervolume_figure(labelled).to_html(full_html=False, include_plotlyjs=True)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>autotune: comparison</title></head>"
            "<body style='font-family:sans-serif'><h1>autotune: runs compared</h1>"
            f"<table border='1' cellpadding='3' style='border-collapse:collapse'><tr>{head}</tr>{''.join(rows)}"
            f"</table><p>{html.escape(note)}</p>{figure}</body></html>")


def write_pngs(records: list[TrialRecord], experiment: Experiment, study_attrs: dict, folder: Path) -> list[Path]:
    """Each dashboard plot as <folder>/<name>.png (kaleido, with Debian's chromium)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures(records, experiment, study_attrs).items():
        path = folder / f"{name}.png"
        fig.write_image(path, width=1400 if name == "fronts" else 1100, height=fig.layout.height or 480)
        paths.append(path)
    return paths
