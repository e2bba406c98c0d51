"""Figures of the cleaning step: score distributions, class counts before and after, duplicate pairs, and the
cleaning ablation's differences from raw."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


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
