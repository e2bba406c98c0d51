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


# ------------------------------------------------------------------------------------ saliency (notebook 04)


def overlay_rgb(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """uint8 RGB: a [0, 1] saliency map coloured with ``cmap`` blended over a uint8 gray (or RGB) image."""
    image = np.asarray(image)
    base = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]
    cam = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float32)), 0.0, 1.0)
    if cam.shape != base.shape[:2]:
        from PIL import Image

        cam = np.asarray(Image.fromarray(cam).resize(base.shape[1::-1], Image.Resampling.BILINEAR))
    heat = plt.get_cmap(cmap)(cam)[..., :3] * 255.0
    return np.clip((1 - alpha) * base.astype(np.float32) + alpha * heat, 0, 255).astype(np.uint8)


def saliency_overlay_grid(images: np.ndarray, maps: np.ndarray, titles: list[str] | None = None, columns: int = 8,
                          size: float = 1.3, suptitle: str | None = None, alpha: float = 0.45) -> plt.Figure:
    """One panel per image: its saliency map (jet) over the face."""
    n = len(images)
    columns = max(1, min(columns, n))
    rows = max(1, int(np.ceil(n / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size * 1.2 + (0.3 if suptitle else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        ax = axes.flat[i]
        ax.imshow(overlay_rgb(images[i], maps[i], alpha))
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    plt.close(fig)
    return fig


def method_comparison(images: np.ndarray, maps_by_method: dict[str, np.ndarray], row_titles: list[str] | None = None,
                      size: float = 1.4, alpha: float = 0.5) -> plt.Figure:
    """Rows: images; columns: the image, then each method's map over it (``{method: N×48×48 maps}``)."""
    methods = list(maps_by_method)
    n = len(images)
    fig, axes = plt.subplots(max(n, 1), len(methods) + 1, squeeze=False,
                             figsize=((len(methods) + 1) * size, max(n, 1) * size * 1.1 + 0.3))
    for ax in axes.flat:
        ax.axis("off")
    for r in range(n):
        axes[r, 0].imshow(images[r], cmap="gray", vmin=0, vmax=255)
        if row_titles is not None:
            axes[r, 0].set_title(row_titles[r], fontsize=7)
        for c, method in enumerate(methods, start=1):
            axes[r, c].imshow(overlay_rgb(images[r], maps_by_method[method][r], alpha))
            if r == 0:
                axes[r, c].set_title(method, fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig


def randomisation_plot(table: pd.DataFrame, title: str = "Sanity check: model-parameter randomisation") -> go.Figure:
    """Spearman ρ (mean ± std) against the randomisation step, from ``saliency.randomisation_check`` (one
    line per ``method`` when the table has that column)."""
    fig = go.Figure()
    groups = table.groupby("method", sort=False) if "method" in table else [("maps", table)]
    for name, part in groups:
        fig.add_trace(go.Scatter(x=part["step"], y=part["spearman_mean"], mode="lines+markers", name=str(name),
                                 error_y={"type": "data", "array": part["spearman_std"], "visible": True},
                                 customdata=part[["randomised"]].replace("", "none").to_numpy(),
                                 hovertemplate="step %{x}: %{customdata[0]}<br>ρ = %{y:.2f}"))
    fig.add_hline(y=0, line_dash="dot", line_color="gray")
    return fig.update_layout(title=title, xaxis_title="randomisation step (output → input)",
                             yaxis_title="Spearman ρ with the trained model's maps", yaxis_range=[-0.3, 1.05])


def deletion_insertion_plot(result: dict, title: str = "Deletion and insertion") -> go.Figure:
    """The four mean curves of ``saliency.deletion_insertion`` (map order solid, random order dotted)."""
    fig = go.Figure()
    colors = {"deletion": "#C44E52", "insertion": "#4C72B0"}
    for kind in ("deletion", "insertion"):
        for prefix, dash in (("", "solid"), ("random_", "dot")):
            key = prefix + kind
            fig.add_trace(go.Scatter(x=result["fractions"], y=result[key], mode="lines", line_dash=dash,
                                     line_color=colors[kind],
                                     name=f"{key.replace('_', ' ')} (AUC {result[key + '_auc']:.3f})"))
    return fig.update_layout(title=title, xaxis_title="share of pixels deleted / inserted", xaxis_tickformat=".0%",
                             yaxis_title="probability of the class", yaxis_range=[0, 1])


def region_bars(report: pd.DataFrame, title: str = "Saliency mass inside the planted region vs its area") -> go.Figure:
    """Grouped bars of ``mass_share`` and ``area_share`` per class, from ``saliency.region_report``."""
    table = report.reset_index()
    fig = go.Figure([go.Bar(x=table["class"], y=table["mass_share"], name="share of map mass in region",
                            text=table["lift"].map(lambda v: f"{v:.1f}×" if np.isfinite(v) else ""),
                            textposition="outside", cliponaxis=False),
                     go.Bar(x=table["class"], y=table["area_share"], name="share of image the region covers")])
    return fig.update_layout(title=title, barmode="group", yaxis_tickformat=".0%", xaxis_title=None,
                             yaxis_range=[0, 1])


# ------------------------------------------------------------------------------------ predictions (notebook 06)


def photo_with_boxes(rgb: np.ndarray, faces, title: str | None = None, width: float = 7.0) -> plt.Figure:
    """The photo with one numbered box per face (``predict.FacePrediction``s), labelled with the top emotion."""
    height = width * rgb.shape[0] / max(rgb.shape[1], 1)
    fig, ax = plt.subplots(figsize=(width, max(height, 1.0)))
    ax.imshow(rgb)
    ax.axis("off")
    line = max(1.5, rgb.shape[1] / 400)
    for k, face in enumerate(faces, start=1):
        x, y, w, h = face.box
        ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, edgecolor="#00E676", linewidth=line))
        score = max(face.scores.values()) if face.scores else float("nan")
        ax.text(x, y - 4, f"{k}: {face.label} {score:.0%}", color="black", fontsize=10, va="bottom",
                bbox={"facecolor": "#00E676", "edgecolor": "none", "pad": 1.5})
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


def face_scores_bar(scores: dict[str, float], title: str | None = None) -> go.Figure:
    """One face's class probabilities as bars (the top class highlighted)."""
    names, values = list(scores), [float(v) for v in scores.values()]
    top = int(np.argmax(values)) if values else -1
    fig = go.Figure(go.Bar(x=names, y=values, text=[f"{v:.0%}" for v in values], textposition="outside",
                           cliponaxis=False, marker_color=["#DD8452" if i == top else "#4C72B0"
                                                           for i in range(len(values))]))
    return fig.update_layout(title=title, yaxis_range=[0, 1.1], yaxis_tickformat=".0%", yaxis_title="probability",
                             height=300, width=520, margin={"t": 40, "b": 40, "l": 50, "r": 10})


def robustness_figure(curves: pd.DataFrame, title: str = "Accuracy under corruption") -> go.Figure:
    """Accuracy against corruption level, one panel per kind (from ``robustness.robustness_curves``); the
    dotted line is the unperturbed accuracy."""
    order = list(dict.fromkeys(curves["kind"]))
    fig = px.line(curves, x="level", y="accuracy", facet_col="kind", facet_col_wrap=4, markers=True,
                  category_orders={"kind": order}, hover_data=["n", "drop"], title=title,
                  facet_row_spacing=0.14, facet_col_spacing=0.05)
    clean = (curves["accuracy"] - curves["drop"]).iloc[0] if len(curves) else None
    if clean is not None:
        fig.add_hline(y=clean, line_dash="dot", line_color="grey")
    fig.update_xaxes(matches=None, showticklabels=True, title=None)
    fig.update_yaxes(range=[0, 1.02])
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    rows = int(np.ceil(len(order) / 4)) or 1
    return fig.update_layout(height=300 * rows + 100)


def perturbation_gallery(examples: dict[str, tuple[np.ndarray, list]], title: str = "One face under each "
                         "corruption") -> plt.Figure:
    """One row per corruption kind, one column per level (from ``robustness.perturbation_examples``)."""
    columns = max((len(levels) for _, levels in examples.values()), default=1)
    fig, axes = plt.subplots(len(examples), columns, figsize=(columns * 1.15 + 1.4, len(examples) * 1.3),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, (kind, (images, levels)) in enumerate(examples.items()):
        for c, (image, level) in enumerate(zip(images, levels, strict=True)):
            axes[r, c].imshow(image, cmap="gray", vmin=0, vmax=255)
            axes[r, c].set_title(f"{level:g}", fontsize=7)
        axes[r, 0].text(-6, 24, kind, ha="right", va="center", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


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


VERDICT_COLORS = {"better": "#2a9d55", "worse": "#c0392b", "no difference": "#555555", "": "#555555"}


def cleaning_ablation_figure(summary: pd.DataFrame, title: str = "Cleaning ablation: difference from raw "
                             "(95 % paired bootstrap)") -> plt.Figure:
    """One panel per (label source, split) from ``cleaning.ablation.ablation_summary``: each variant's accuracy
    difference from raw in points with its interval (filled: whole split; hollow: leakage-free subset), coloured by
    verdict, and its mean accuracy ± std over seeds on the right."""
    panels = list(dict.fromkeys(zip(summary["label_source"], summary["split"], strict=True)))
    variants = list(dict.fromkeys(summary["variant"]))
    columns = len(dict.fromkeys(summary["split"]))
    rows = max(1, int(np.ceil(len(panels) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(6.2 * columns, 0.55 * len(variants) * rows + 1.4),
                             squeeze=False, sharey=True)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (source, split) in zip(axes.flat, panels, strict=False):
        part = summary[(summary.label_source == source) & (summary.split == split)]
        for offset, subset, filled in ((-0.12, "all", True), (0.12, "leakage_free", False)):
            rows_ = part[part.subset == subset].set_index("variant")
            for k, name in enumerate(variants):
                if name not in rows_.index or name == "raw":
                    continue
                r = rows_.loc[name]
                color = VERDICT_COLORS.get(r["verdict_vs_raw"], "#555555")
                ax.errorbar(r["diff_vs_raw"] * 100, k + offset, xerr=[[(r["diff_vs_raw"] - r["low_vs_raw"]) * 100],
                                                                      [(r["high_vs_raw"] - r["diff_vs_raw"]) * 100]],
                            fmt="o", color=color, mfc=color if filled else "white", capsize=3)
        whole = part[part.subset == "all"].set_index("variant")
        for k, name in enumerate(variants):
            if name in whole.index:
                r = whole.loc[name]
                std = "" if pd.isna(r["accuracy_std"]) else f" ± {r['accuracy_std'] * 100:.1f}"
                ax.annotate(f"{r['accuracy_mean'] * 100:.1f}{std}", (1.01, k), xycoords=("axes fraction", "data"),
                            va="center", fontsize=8)
        ax.axvline(0, color="black", lw=0.8)
        n = int(whole["n"].iloc[0]) if len(whole) else 0
        ax.set_title(f"{split}, {source} labels (n = {n})", fontsize=10)
        ax.set_xlabel("accuracy difference from raw (points)")
        ax.set_yticks(range(len(variants)), variants)
        ax.set_ylim(len(variants) - 0.5, -0.5)
    fig.suptitle(title + "\nfilled: whole split, hollow: leakage-free subset; right: accuracy % mean ± std over seeds",
                 fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig
