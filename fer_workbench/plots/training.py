"""Figures of training and tuning: learning curves, keras-tuner trials and hyperparameter importance, model
comparisons."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def tuning_parallel_coordinates(results: pd.DataFrame) -> go.Figure:
    """One line per trial across its hyperparameters, coloured by score (from ``tuning.results_frame``)."""
    done = results.dropna(subset=["score"])
    dims = []
    shown = [c for c in done.columns if c not in ("trial_id", "status", "seconds") and not c.startswith("tuner/")]
    for column in shown:
        values = done[column]
        if not pd.api.types.is_numeric_dtype(values) or values.dtype == bool:
            codes, labels = pd.factorize(values.astype(str), sort=True)
            dims.append({"label": column, "values": codes, "tickvals": list(range(len(labels))),
                         "ticktext": list(labels)})
        else:
            dims.append({"label": column, "values": values})
    fig = go.Figure(go.Parcoords(line={"color": done["score"], "colorscale": "Viridis", "showscale": True},
                                 dimensions=dims))
    return fig.update_layout(title="Trials across hyperparameters (colour: PublicTest accuracy)")


def importance_bar(importance: pd.Series, title: str = "Hyperparameter importance") -> go.Figure:
    """Horizontal bars from ``tuning.hyperparameter_importance``."""
    fig = px.bar(x=importance.to_numpy(), y=importance.index, orientation="h", title=title)
    return fig.update_layout(xaxis_title="importance (random forest on trial scores)", yaxis_title=None,
                             yaxis={"autorange": "reversed"})


def learning_curves(history: pd.DataFrame, group: str | None = None, title: str = "Learning curves") -> go.Figure:
    """Accuracy per epoch. ``history`` is long (epoch, metric, value[, group]) as ``tuning.trial_histories``
    returns, or wide as ``training.train`` returns (epoch + accuracy / val_accuracy columns)."""
    if "metric" not in history.columns:
        keep = [c for c in ("accuracy", "val_accuracy") if c in history.columns]
        history = history.melt(id_vars="epoch", value_vars=keep, var_name="metric", value_name="value")
    fig = px.line(history, x="epoch", y="value", color=group, line_dash="metric", markers=True, title=title)
    return fig.update_layout(yaxis_title="accuracy")


def learning_curves_static(history: pd.DataFrame, title: str = "Learning curves") -> plt.Figure:
    """``learning_curves`` as a static matplotlib figure for PNG files (model cards): Training / PublicTest
    accuracy and loss per epoch, with the learning rate on a twin axis."""
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    for column, label in (("accuracy", "Training (augmented)"), ("val_accuracy", "PublicTest")):
        if column in history:
            acc_ax.plot(history["epoch"], history[column], label=label)
    for column, label in (("loss", "Training (augmented)"), ("val_loss", "PublicTest")):
        if column in history:
            loss_ax.plot(history["epoch"], history[column], label=label)
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    if "learning_rate" in history:
        lr_ax = loss_ax.twinx()
        lr_ax.plot(history["epoch"], history["learning_rate"], color="grey", linestyle=":", label="learning rate")
        lr_ax.set_ylabel("learning rate", color="grey")
    acc_ax.legend(fontsize=8)
    loss_ax.legend(fontsize=8, loc="upper center")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


def comparison_bars(table: pd.DataFrame, label: str = "model") -> go.Figure:
    """PrivateTest accuracy and macro-F1 per model / ablation value (from ``comparison``)."""
    long = table.assign(**{label: table[label].astype(str)}).melt(
        id_vars=label, value_vars=["accuracy", "macro_f1", "leakage_free_accuracy"], var_name="metric")
    fig = px.bar(long, x=label, y="value", color="metric", barmode="group", title="PrivateTest scores")
    return fig.update_layout(yaxis_range=[0, 1], xaxis_title=None)


def label_source_bars(table: pd.DataFrame) -> go.Figure:
    """Per label source (``comparison.label_source_comparison``): accuracy on its own PublicTest and PrivateTest
    labels, and on the common ground of PrivateTest's FER+ majority over the shared classes."""
    columns = ["PublicTest accuracy", "PrivateTest accuracy", "PrivateTest FER+ majority, shared classes"]
    long = table.melt(id_vars="labels", value_vars=columns, var_name="scored on")
    fig = px.bar(long, x="labels", y="value", color="scored on", barmode="group",
                 title="The same network trained on each label source")
    return fig.update_layout(yaxis_range=[0, 1], xaxis_title="trained on", yaxis_title="accuracy")


def probe_figure(table: pd.DataFrame, title: str = "Probes: selection on PublicTest") -> plt.Figure:
    """A probe table (``probes.ProbeResults.table``) as a static figure: per probe its PublicTest accuracy (filled
    dot, the selection figure) with the 95 % interval of its difference from the baseline (whisker; the baseline's
    accuracy is the dashed line), its PrivateTest accuracy (hollow dot: reported, never chosen on), and its
    training images/s."""
    rows = table.reset_index(drop=True)
    y = np.arange(len(rows))[::-1]
    height = 0.42 * len(rows) + 2.0
    fig, (acc_ax, speed_ax) = plt.subplots(1, 2, figsize=(9, height), dpi=100,
                                           gridspec_kw={"width_ratios": [3, 1.2]}, sharey=True)
    public = rows["publictest_accuracy"].to_numpy(float) * 100
    private = rows["privatetest_accuracy"].to_numpy(float) * 100
    shown = [public, private]
    base = rows.index[rows["probe"] == "baseline"]
    if len(base):
        acc_ax.axvline(public[base[0]], color="grey", linestyle="--", linewidth=1, label="baseline, PublicTest")
        low = public[base[0]] + rows["vs_baseline_low"].to_numpy(float) * 100
        high = public[base[0]] + rows["vs_baseline_high"].to_numpy(float) * 100
        has = ~np.isnan(low)
        acc_ax.hlines(y[has], low[has], high[has], color="#4c78a8", linewidth=1.5,
                      label="95 % interval of the difference from the baseline")
        shown += [low[has], high[has]]
    acc_ax.scatter(public, y, color="#4c78a8", zorder=3, label="PublicTest (selection)")
    acc_ax.scatter(private, y, facecolors="none", edgecolors="#e45756", zorder=3, label="PrivateTest (reported)")
    values = np.concatenate(shown)
    values = values[~np.isnan(values)]
    margin = max(1.0, 0.1 * (values.max() - values.min()))
    acc_ax.set_xlim(values.min() - margin, values.max() + margin)
    acc_ax.set(yticks=y, yticklabels=rows["probe"], xlabel="accuracy (%)")
    acc_ax.grid(axis="x", alpha=0.3)
    speed_ax.barh(y, rows["images_per_second"].to_numpy(float), color="#72b7b2")
    speed_ax.set(xlabel="training images/s")
    fig.legend(*acc_ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1))  # room for the legend below
    plt.close(fig)
    return fig
