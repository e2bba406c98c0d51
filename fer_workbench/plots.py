"""Figure builders: computed results in, a plotly / matplotlib figure out. Nothing here computes statistics
or displays anything; a notebook cell displays the returned figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
import seaborn as sns

from fer_workbench import CLASS_NAMES

SPLIT_COLORS = {"Training": "#4C72B0", "PublicTest": "#DD8452", "PrivateTest": "#55A868"}


def use_offline_plotly() -> None:
    """Render plotly figures for JupyterLab *and* for nbconvert HTML that works with no internet.

    plotly ≥ 6 figures vanish from exported HTML unless plotly.js travels inside the notebook: the "notebook"
    renderer embeds it once; "plotly_mimetype" keeps JupyterLab's native rendering.
    """
    pio.renderers.default = "plotly_mimetype+notebook"


def class_counts_bar(counts: pd.DataFrame) -> go.Figure:
    """Grouped bars of images per class for each split, from ``Dataset.counts()``."""
    table = counts.drop(index="total", errors="ignore").drop(columns="total", errors="ignore")
    long = table.reset_index().melt(id_vars="split", var_name="class", value_name="images")
    fig = px.bar(long, x="class", y="images", color="split", barmode="group", text="images",
                 color_discrete_map=SPLIT_COLORS, title="Images per class and split")
    fig.update_traces(textposition="outside", cliponaxis=False)
    return fig.update_layout(yaxis_title="images", xaxis_title=None, legend_title=None)


def imbalance_bar(balance: pd.DataFrame) -> go.Figure:
    """Class shares with the imbalance ratio against the largest class, from ``explore.class_balance``."""
    fig = px.bar(balance.reset_index(), x="class", y="share", text="imbalance_ratio",
                 title="Class shares (label: largest class ÷ this class)")
    fig.update_traces(texttemplate="%{text:.1f}×", textposition="outside", cliponaxis=False)
    return fig.update_layout(yaxis_tickformat=".0%", xaxis_title=None)


def image_grid(images: np.ndarray, titles: list[str] | None = None, columns: int = 10, size: float = 1.1,
               suptitle: str | None = None, cmap: str = "gray") -> plt.Figure:
    """A grid of 48×48 images with optional per-image titles."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size * 1.15), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, image in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(image, cmap=cmap, vmin=0, vmax=255 if image.dtype == np.uint8 else None)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    plt.close(fig)  # returned for display, not left open in pyplot's state
    return fig


def class_sample_grid(images_by_class: dict[str, np.ndarray], suptitle: str = "Samples per class") -> plt.Figure:
    """One row per class: ``{class name: images}``."""
    columns = max((len(v) for v in images_by_class.values()), default=1)
    fig, axes = plt.subplots(len(images_by_class), columns, squeeze=False,
                             figsize=(columns * 1.05 + 1, len(images_by_class) * 1.1))
    for r, (name, images) in enumerate(images_by_class.items()):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=255)
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(suptitle)
    fig.tight_layout()
    plt.close(fig)
    return fig


def mean_face_panel(means: np.ndarray, class_names, title: str = "Mean face per class") -> plt.Figure:
    """Each class's mean image, then its difference from the overall mean (where classes differ)."""
    overall = np.nanmean(means, axis=0)
    diff = means - overall
    limit = np.nanmax(np.abs(diff)) or 1.0
    fig, axes = plt.subplots(2, len(class_names), figsize=(1.6 * len(class_names), 3.6), squeeze=False)
    for k, name in enumerate(class_names):
        axes[0, k].imshow(means[k], cmap="gray", vmin=0, vmax=255)
        axes[0, k].set_title(name, fontsize=9)
        axes[1, k].imshow(diff[k], cmap="RdBu_r", vmin=-limit, vmax=limit)
        for ax in axes[:, k]:
            ax.axis("off")
    axes[1, 0].text(-4, 24, "− mean", ha="right", va="center", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _class_order_key(names: pd.Series) -> pd.Series:
    return names.map(lambda n: CLASS_NAMES.index(n) if n in CLASS_NAMES else len(CLASS_NAMES))


def intensity_distributions(stats: pd.DataFrame) -> go.Figure:
    """Brightness and contrast per image, by class, from ``explore.image_statistics``."""
    long = stats.melt(id_vars=["label_name", "split"], value_vars=["brightness", "contrast"],
                      var_name="statistic", value_name="value")
    order = list(dict.fromkeys(stats["label_name"].sort_values(key=_class_order_key)))
    fig = px.violin(long, x="label_name", y="value", color="label_name", facet_row="statistic", box=True,
                    points=False, category_orders={"label_name": order},
                    title="Pixel intensity (mean) and contrast (std) per image")
    fig.update_yaxes(matches=None)
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    return fig.update_layout(showlegend=False, height=560, xaxis_title=None)


def pixel_histogram(images: np.ndarray, labels: np.ndarray, class_names) -> go.Figure:
    """Distribution of pixel values per class (normalised counts over 256 grey levels)."""
    fig = go.Figure()
    for k, name in enumerate(class_names):
        members = images[labels == k]
        if len(members):
            hist = np.bincount(members.ravel(), minlength=256) / members.size
            fig.add_trace(go.Scatter(x=np.arange(256), y=hist, mode="lines", name=name))
    return fig.update_layout(title="Grey-level distribution per class", xaxis_title="grey level",
                             yaxis_title="share of pixels")


def count_table_heatmap(table: pd.DataFrame, title: str, normalise_rows: bool = False) -> plt.Figure:
    """An annotated heatmap of a count table (e.g. FER2013 label × FER+ majority, leakage between splits)."""
    values = table.div(table.sum(axis=1).replace(0, 1), axis=0) if normalise_rows else table
    fig, ax = plt.subplots(figsize=(1.0 * table.shape[1] + 2.5, 0.55 * table.shape[0] + 1.5))
    sns.heatmap(values, annot=table.to_numpy(), fmt="d", cmap="Blues", cbar=normalise_rows, ax=ax,
                linewidths=0.5)
    ax.set_title(title)
    ax.tick_params(axis="y", labelrotation=0)
    fig.tight_layout()
    plt.close(fig)
    return fig


def image_mosaic(images: np.ndarray, columns: int = 10, scale: int = 2, gap: int = 2) -> np.ndarray:
    """Tile uint8 images into one uint8 array (fast enough to redraw on every widget change)."""
    n = max(len(images), 1)
    rows = int(np.ceil(n / columns))
    side = images.shape[1] * scale if len(images) else 48 * scale
    mosaic = np.full((rows * (side + gap) + gap, columns * (side + gap) + gap), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        tile = np.kron(image, np.ones((scale, scale), np.uint8)) if scale > 1 else image
        mosaic[gap + r * (side + gap): gap + r * (side + gap) + side,
               gap + c * (side + gap): gap + c * (side + gap) + side] = tile
    return mosaic


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


def tuning_parallel_coordinates(results: pd.DataFrame) -> go.Figure:
    """One line per trial across its hyperparameters, coloured by score (from ``tuning.results_frame``)."""
    done = results.dropna(subset=["score"])
    dims = []
    for column in [c for c in done.columns if c not in ("trial_id", "status", "seconds") and not c.startswith("tuner/")]:
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


def comparison_bars(table: pd.DataFrame, label: str = "model") -> go.Figure:
    """PrivateTest accuracy and macro-F1 per model / ablation value (from ``comparison``)."""
    long = table.assign(**{label: table[label].astype(str)}).melt(
        id_vars=label, value_vars=["accuracy", "macro_f1", "leakage_free_accuracy"], var_name="metric")
    fig = px.bar(long, x=label, y="value", color="metric", barmode="group", title="PrivateTest scores")
    return fig.update_layout(yaxis_range=[0, 1], xaxis_title=None)


def score_histogram(manifest: pd.DataFrame, score: str, flag: str | None = None, title: str | None = None
                    ) -> go.Figure:
    """Distribution of one cleaning score, coloured by whether the row carries ``flag``."""
    frame = manifest[[score]].copy()
    if flag and f"flag_{flag}" in manifest:
        frame["flagged"] = np.where(manifest[f"flag_{flag}"].astype(bool), "flagged", "not flagged")
    fig = px.histogram(frame, x=score, color="flagged" if "flagged" in frame else None, nbins=80,
                       log_y=True, title=title or f"Distribution of {score}", barmode="overlay")
    return fig.update_layout(yaxis_title="images (log scale)")


def before_after_bars(counts: pd.DataFrame, title: str = "Images per class before and after cleaning") -> go.Figure:
    """Grouped bars from ``cleaning.review.class_counts_before_after``."""
    long = counts.reset_index().melt(id_vars="class", var_name="stage", value_name="images")
    return px.bar(long, x="class", y="images", color="stage", barmode="group", title=title, text="images")


def pair_grid(images: np.ndarray, pairs: list[tuple[int, int]], titles: list[str], columns: int = 4,
              title: str = "Duplicate pairs") -> plt.Figure:
    """Side-by-side image pairs (positions into ``images``), ``columns`` pairs per row."""
    rows = max(1, int(np.ceil(len(pairs) / columns)))
    fig, axes = plt.subplots(rows, columns * 2, figsize=(columns * 2.3, rows * 1.35), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (a, b) in enumerate(pairs):
        r, c = divmod(k, columns)
        axes[r, 2 * c].imshow(images[a], cmap="gray", vmin=0, vmax=255)
        axes[r, 2 * c + 1].imshow(images[b], cmap="gray", vmin=0, vmax=255)
        axes[r, 2 * c].set_title(titles[k], fontsize=7, loc="left")
    fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig
