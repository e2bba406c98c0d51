"""Figures of a model's scores (from ``metrics``): confusion matrix, ROC and precision-recall curves, reliability,
per-class and per-split bars."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from fer_workbench.plots.style import SPLIT_COLORS


def confusion_heatmap(matrix: pd.DataFrame, title: str = "Confusion matrix (rows: true class)") -> go.Figure:
    """A confusion matrix from ``metrics.confusion`` (counts or row-normalised) as an annotated heatmap."""
    normalised = matrix.to_numpy().dtype.kind == "f"
    fig = px.imshow(matrix, text_auto=".2f" if normalised else "d", color_continuous_scale="Blues",
                    labels={"x": "predicted", "y": "true", "color": "share" if normalised else "images"},
                    title=title, aspect="equal")
    return fig.update_xaxes(side="bottom")


def roc_figure(curves: dict[str, pd.DataFrame], aucs: dict[str, float] | None = None) -> go.Figure:
    """One-vs-rest ROC curves from ``metrics.roc_curves``; click legend entries to select classes."""
    fig = go.Figure()
    for name, curve in curves.items():
        label = f"{name} (AUC {aucs[name]:.3f})" if aucs and name in aucs else name
        fig.add_trace(go.Scatter(x=curve["fpr"], y=curve["tpr"], mode="lines", name=label))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"},
                             name="chance", hoverinfo="skip"))
    return fig.update_layout(title="ROC, one class vs the rest", xaxis_title="false positive rate",
                             yaxis_title="true positive rate")


def pr_figure(curves: dict[str, pd.DataFrame], aps: dict[str, float] | None = None) -> go.Figure:
    """Precision-recall curves from ``metrics.pr_curves``."""
    fig = go.Figure()
    for name, curve in curves.items():
        label = f"{name} (AP {aps[name]:.3f})" if aps and name in aps else name
        fig.add_trace(go.Scatter(x=curve["recall"], y=curve["precision"], mode="lines", name=label))
    return fig.update_layout(title="Precision-recall per class", xaxis_title="recall", yaxis_title="precision",
                             yaxis_range=[0, 1.02])


def class_selector_figure(roc: dict[str, pd.DataFrame], pr: dict[str, pd.DataFrame],
                          aucs: dict[str, float] | None = None, aps: dict[str, float] | None = None,
                          title: str = "ROC and precision-recall per class") -> go.Figure:
    """ROC (left) and precision-recall (right) from ``metrics.roc_curves`` / ``metrics.pr_curves`` with a
    dropdown showing all classes or one; the dropdown is plain plotly.js, so it works in exported HTML."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("ROC, one class vs the rest", "Precision-recall"),
                        horizontal_spacing=0.1)
    colors = px.colors.qualitative.Plotly
    names = list(dict.fromkeys([*roc, *pr]))
    owner = []  # class name of each trace (None: always shown)
    for i, name in enumerate(names):
        color = colors[i % len(colors)]
        if name in roc:
            label = f"{name} (AUC {aucs[name]:.3f})" if aucs and name in aucs else name
            fig.add_trace(go.Scatter(x=roc[name]["fpr"], y=roc[name]["tpr"], mode="lines", name=label,
                                     legendgroup=name, line={"color": color}), row=1, col=1)
            owner.append(name)
        if name in pr:
            label = f"{name} (AP {aps[name]:.3f})" if aps and name in aps else name
            fig.add_trace(go.Scatter(x=pr[name]["recall"], y=pr[name]["precision"], mode="lines", name=label,
                                     legendgroup=name, line={"color": color}, showlegend=name not in roc),
                          row=1, col=2)
            owner.append(name)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"},
                             name="chance", hoverinfo="skip"), row=1, col=1)
    owner.append(None)

    def button(label, keep):
        return {"label": label, "method": "update",
                "args": [{"visible": [o is None or keep is None or o == keep for o in owner]},
                         {"title.text": f"{title}: {label}"}]}

    fig.update_layout(
        title=f"{title}: all classes", height=480,
        updatemenus=[{"buttons": [button("all classes", None)] + [button(n, n) for n in names],
                      "direction": "down", "x": 1.0, "xanchor": "right", "y": 1.18, "yanchor": "top",
                      "showactive": True}])
    fig.update_xaxes(title_text="false positive rate", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="true positive rate", range=[0, 1.02], row=1, col=1)
    fig.update_xaxes(title_text="recall", range=[0, 1], row=1, col=2)
    fig.update_yaxes(title_text="precision", range=[0, 1.02], row=1, col=2)
    return fig


def reliability_diagram(table: pd.DataFrame, ece: float | None = None, title: str = "Reliability") -> go.Figure:
    """Accuracy against confidence per bin (from ``metrics.reliability_table``); the diagonal is calibrated."""
    fig = go.Figure()
    fig.add_trace(go.Bar(x=(table["bin_low"] + table["bin_high"]) / 2, y=table["accuracy"],
                         width=table["bin_high"] - table["bin_low"], name="accuracy",
                         customdata=table["count"], hovertemplate="accuracy %{y:.2f}<br>%{customdata} images"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"},
                             name="perfect calibration"))
    suffix = f" (ECE {ece:.3f})" if ece is not None else ""
    return fig.update_layout(title=title + suffix, xaxis_title="confidence", yaxis_title="accuracy",
                             xaxis_range=[0, 1], yaxis_range=[0, 1])


def per_class_bars(table: pd.DataFrame, columns=("precision", "recall", "f1")) -> go.Figure:
    """Grouped bars of per-class scores from ``metrics.per_class_table``."""
    long = table.reset_index().melt(id_vars="class", value_vars=list(columns), var_name="metric")
    fig = px.bar(long, x="class", y="value", color="metric", barmode="group", title="Per-class scores")
    return fig.update_layout(yaxis_range=[0, 1], xaxis_title=None)


def split_metrics_bars(table: pd.DataFrame, columns=("accuracy", "balanced_accuracy", "macro_f1", "ece",
                                                     "mean_average_precision"),
                       title: str = "Headline metrics per split") -> go.Figure:
    """Grouped bars of headline metrics, one colour per row of ``table`` (index: split or label set)."""
    keep = [c for c in columns if c in table.columns]
    long = table[keep].rename_axis("split").reset_index().melt(id_vars="split", var_name="metric")
    fig = px.bar(long, x="metric", y="value", color="split", barmode="group", text="value", title=title,
                 color_discrete_map=SPLIT_COLORS)
    fig.update_traces(texttemplate="%{text:.3f}", textposition="outside", cliponaxis=False)
    return fig.update_layout(yaxis_range=[0, 1.05], xaxis_title=None, legend_title=None)
