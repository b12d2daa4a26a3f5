"""The run dashboard: one self-contained HTML page of plotly figures."""
from __future__ import annotations

import html
import json

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from autotune.config import Experiment
from autotune.report.records import TrialRecord, hypervolume_history, pareto_front

COST_AXES = (("flash_kb", "flash (KB)", "max_flash_kb"), ("ram_kb", "RAM (KB)", "max_ram_kb"),
             ("latency_ms", "latency (ms)", "max_latency_ms"))


def _hover(r: TrialRecord) -> str:
    m = r.metrics
    lines = [f"trial {r.number}", f"accuracy {m['accuracy']:.3f}", f"flash {m['flash_kb']:.1f} KB",
             f"RAM {m['ram_kb']:.1f} KB", f"latency {m['latency_ms']:.2f} ms",
             f"params {m['params_count']:,}", f"MACs {m['macs']:,}"]
    lines += [f"{k} = {v}" for k, v in sorted(r.params.items())]
    return "<br>".join(html.escape(line) for line in lines)


def front_figure(records: list[TrialRecord], experiment: Experiment) -> go.Figure:
    """Accuracy against each cost: all trials, infeasible ones marked, the front highlighted."""
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
        fig.update_xaxes(title_text=label, row=1, col=col)
    fig.update_yaxes(title_text="accuracy (integer model)", row=1, col=1)
    fig.update_layout(title=f"{experiment.name}: accuracy vs cost on {experiment.target}", height=480,
                      template="plotly_white")
    return fig


def parallel_figure(records: list[TrialRecord], experiment: Experiment) -> go.Figure:
    complete = [r for r in records if r.complete]
    numeric = sorted({k for r in complete for k, v in r.params.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool)})
    dims = [dict(label=k, values=[r.params.get(k, 0) for r in complete]) for k in numeric]
    dims += [dict(label=label, values=[r.metrics[attr] for r in complete])
             for attr, label, _ in COST_AXES]
    dims.append(dict(label="accuracy", values=[r.metrics["accuracy"] for r in complete]))
    fig = go.Figure(go.Parcoords(
        name="trials", dimensions=dims,
        line=dict(color=[r.metrics["accuracy"] for r in complete], colorscale="Viridis", showscale=True)))
    fig.update_layout(title="parameters and objectives of every completed trial", height=480,
                      template="plotly_white")
    return fig


def hypervolume_figure(records: list[TrialRecord], experiment: Experiment) -> go.Figure:
    history = hypervolume_history(records, experiment)
    fig = go.Figure(go.Scatter(x=[n for n, _ in history], y=[hv for _, hv in history],
                               mode="lines+markers", name="hypervolume"))
    fig.update_layout(title="hypervolume of the feasible front over trials (objectives scaled by the limits)",
                      xaxis_title="trial", yaxis_title="hypervolume", height=380, template="plotly_white")
    return fig


def dashboard_html(records: list[TrialRecord], experiment: Experiment) -> str:
    figures = [front_figure(records, experiment), parallel_figure(records, experiment),
               hypervolume_figure(records, experiment)]
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)]
    summary = {
        "experiment": experiment.name, "target": experiment.target,
        "trials": len(records), "complete": sum(r.complete for r in records),
        "feasible": sum(r.feasible for r in records),
        "front": len(pareto_front(records, experiment.objectives)),
    }
    head = (f"<h1>autotune: {html.escape(experiment.name)}</h1>"
            f"<p>{html.escape(json.dumps(summary))}</p>"
            "<p>Accuracy is measured on the integer model; costs say in trials.csv and pareto.json "
            "whether they were predicted or measured, and by what.</p>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>autotune "
            f"{html.escape(experiment.name)}</title></head><body style='font-family:sans-serif'>"
            f"{head}{''.join(parts)}</body></html>")
