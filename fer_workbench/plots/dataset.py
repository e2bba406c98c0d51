"""Figures of the data itself (notebooks 01-02): class counts and shares, image grids and mosaics, mean faces,
intensity distributions, count tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import seaborn as sns

from fer_workbench import CLASS_NAMES
from fer_workbench.plots.style import SPLIT_COLORS


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
