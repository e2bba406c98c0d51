"""Figures of predictions on photos and of robustness (notebook 06): boxed faces, one face's scores, accuracy under
corruption and the corruptions themselves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


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
