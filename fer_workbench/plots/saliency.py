"""Saliency figures (notebook 04): maps over faces, methods side by side, and the sanity checks' curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go


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
