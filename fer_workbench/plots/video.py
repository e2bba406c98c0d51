"""Figures of a clip's predictions (notebook 06): an emotion timeline per tracked person and a strip of key frames
with numbered boxes. Both read a ``video.VideoPrediction`` as it is; nothing is recomputed here."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# One colour per class wherever a clip is drawn (FER2013's seven, then FER+'s contempt); other names cycle a palette.
EMOTION_COLORS = {"angry": "#D62728", "disgust": "#2CA02C", "fear": "#9467BD", "happy": "#FFBF00",
                  "sad": "#1F77B4", "surprise": "#17BECF", "neutral": "#9E9E9E", "contempt": "#8C564B"}
_SPARE = ("#E377C2", "#BCBD22", "#7F7F7F", "#AEC7E8", "#FF9896")
MAX_TIMELINE_TRACKS = 8


def emotion_color(name: str, k: int = 0) -> str:
    return EMOTION_COLORS.get(name, _SPARE[k % len(_SPARE)])


def _seen_runs(times: np.ndarray, step: float) -> list[slice]:
    """The runs of consecutive samples of a track: a new run wherever it was not seen for more than 1.5 sampling
    steps. Each run is stacked on its own, since a stacked area takes a missing value for 0 and would dip there."""
    breaks = [0, *(np.flatnonzero(np.diff(times) > 1.5 * step) + 1), len(times)]
    return [slice(a, b) for a, b in itertools.pairwise(breaks) if b > a]


def video_timeline(clip, max_tracks: int = MAX_TIMELINE_TRACKS) -> go.Figure:
    """Per tracked person (the ``max_tracks`` seen in most frames, in id order): the class probabilities over time
    stacked to 1, and beneath them a band coloured by the frame's label. Gaps where the person was not seen stay
    empty; dotted lines mark scene cuts."""
    names = list(clip.class_names)
    shown = sorted(sorted(clip.tracks, key=lambda t: -t.frames)[:max_tracks], key=lambda t: t.track)
    if not shown:
        fig = go.Figure()
        return fig.update_layout(title=f"{Path(clip.file).name}: no face tracked", height=200,
                                 xaxis={"visible": False}, yaxis={"visible": False})
    frame_times = np.array([f.time for f in clip.frames], np.float64)
    step = float(np.median(np.diff(frame_times))) if len(frame_times) > 1 else 1.0
    fig = make_subplots(rows=2 * len(shown), cols=1, shared_xaxes=True, vertical_spacing=0.025,
                        row_heights=[0.8, 0.2] * len(shown))
    for row, track in enumerate(shown):
        series = clip.track_series(track.track)
        times, values = series["time"].to_numpy(np.float64), series[names].to_numpy(np.float64)
        for run, seen in enumerate(_seen_runs(times, step)):
            for k, name in enumerate(names):
                hover = f"{name} %{{y:.0%}} at %{{x:.2f}} s<extra>#{track.track}</extra>"
                fig.add_trace(go.Scatter(x=times[seen], y=values[seen, k], name=name, legendgroup=name,
                                         showlegend=row == 0 and run == 0, mode="lines",
                                         stackgroup=f"track{track.track}-{run}", line={"width": 0.5},
                                         fillcolor=emotion_color(name, k), line_color=emotion_color(name, k),
                                         hovertemplate=hover),
                              row=2 * row + 1, col=1)
        labels = series["label"].tolist()
        fig.add_trace(go.Bar(x=series["time"], y=[1] * len(labels), width=step, showlegend=False,
                             marker_color=[emotion_color(label, names.index(label) if label in names else 0)
                                           for label in labels], marker_line_width=0, hovertext=labels,
                             hovertemplate="%{hovertext} at %{x:.2f} s<extra>label</extra>"),
                      row=2 * row + 2, col=1)
        fig.update_yaxes(range=[0, 1], tickformat=".0%", row=2 * row + 1, col=1,
                         title_text=f"#{track.track}: {clip.dominant_label(track)}")
        fig.update_yaxes(visible=False, range=[0, 1], row=2 * row + 2, col=1)
    cut_times = [f.time for f in clip.frames if f.index in set(clip.cuts)]
    for time in cut_times:
        fig.add_vline(x=time, line_dash="dot", line_color="black", opacity=0.6, row="all", col=1)
    fig.update_xaxes(title_text="time (s)", row=2 * len(shown), col=1)
    title = f"{Path(clip.file).name}: class probabilities over time per tracked face (#track: mostly)"
    return fig.update_layout(title=title, bargap=0, height=140 + 200 * len(shown),
                             margin={"t": 90, "b": 50, "l": 70, "r": 10},
                             legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0})


def video_key_frames(clip, columns: int = 4, width: float = 12.0) -> plt.Figure:
    """The clip's key frames (thumbnails spread over the clip) with one numbered box per face: ``#track label``,
    in the track's colour of the timeline's label band."""
    keys = list(clip.key_frames)
    if not keys:
        fig, ax = plt.subplots(figsize=(width, 1.0))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{Path(clip.file).name}: no frame to show", ha="center", va="center")
        plt.close(fig)
        return fig
    columns = max(1, min(columns, len(keys)))
    rows = math.ceil(len(keys) / columns)
    aspect = keys[0].rgb.shape[0] / max(keys[0].rgb.shape[1], 1)
    fig, axes = plt.subplots(rows, columns, figsize=(width, rows * width / columns * aspect + 0.4 * rows),
                             squeeze=False)
    names = list(clip.class_names)
    for ax in axes.flat:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys, strict=False):
        ax.imshow(key.rgb)
        ax.set_title(f"frame {key.index} · {key.time:.2f} s", fontsize=9)
        for face in key.faces:
            x, y, w, h = (v * key.scale for v in face.box)
            color = emotion_color(face.label, names.index(face.label) if face.label in names else 0)
            ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=2))
            ax.text(x, y - 2, f"#{face.track} {face.label}", fontsize=8, va="bottom", color="black",
                    bbox={"facecolor": color, "edgecolor": "none", "pad": 1.0})
    fig.suptitle(f"{Path(clip.file).name}: key frames (#track label)", fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


__all__ = ["EMOTION_COLORS", "emotion_color", "video_key_frames", "video_timeline"]
