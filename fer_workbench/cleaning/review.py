"""What notebook 02 and its review widget need from a manifest: rankings per flag, an overview table, and
recording a reviewer's accept / reject decision so the next cleaning run honours it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fer_workbench.cleaning.manifest import DECISIONS, FLAGS, load_decisions, save_decisions
from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError

# The score each flag is ranked by, and whether high values mean "more suspicious".
FLAG_SCORES: dict[str, tuple[str, bool]] = {
    "blank": ("pixel_std", False),
    "nonface": ("nonface", True),
    "occlusion": ("occlusion", True),
    "duplicate": ("near_similarity", True),
    "label_issue": ("label_quality", False),
}


def ranked(manifest: pd.DataFrame, flag: str, limit: int = 20, flagged_only: bool = True) -> pd.DataFrame:
    """The manifest rows most suspicious for one flag, most suspicious first (with their positions)."""
    if flag not in FLAG_SCORES:
        raise WorkbenchError(f"unknown flag {flag!r}; choose one of {', '.join(FLAG_SCORES)}")
    column, high_is_bad = FLAG_SCORES[flag]
    if column not in manifest:
        return manifest.iloc[0:0].assign(position=pd.Series(dtype=int))
    rows = manifest.assign(position=np.arange(len(manifest)))
    if flagged_only and f"flag_{flag}" in rows:
        rows = rows[rows[f"flag_{flag}"].astype(bool)]
    return rows.sort_values(column, ascending=not high_is_bad, kind="stable").head(limit)


def captions(rows: pd.DataFrame, flag: str, class_names) -> list[str]:
    """Short per-image captions for a gallery: row id, label and the flag's evidence."""
    column = FLAG_SCORES[flag][0]
    names = np.asarray(class_names)
    out = []
    for _, row in rows.iterrows():
        text = f"#{row['row_id']} {row['label_name']}"
        if flag == "label_issue" and "predicted_label" in row:
            text += f"→{names[int(row['predicted_label'])]}"
        elif column in row and pd.notna(row[column]):
            text += f" {row[column]:.2f}"
        out.append(text)
    return out


def overview(summary: dict) -> pd.DataFrame:
    """Flagged and excluded counts per flag from a cleaning summary."""
    flagged, excluded = summary.get("flagged", {}), summary.get("excluded_by", {})
    table = pd.DataFrame({"flagged": pd.Series(flagged), "excluded": pd.Series(excluded)}).fillna(0).astype(int)
    table.index.name = "flag"
    table.loc["any (rows)"] = [int(sum(flagged.values())), int(summary.get("excluded", 0))]
    return table


def class_counts_before_after(summary: dict) -> pd.DataFrame:
    """Images per class before and after cleaning (from the summary's imbalance reports)."""
    before, after = summary["imbalance"]["before"], summary["imbalance"]["after"]
    return pd.DataFrame({"before": before["count"], "after": after["count"]}, index=pd.Index(before["class"],
                                                                                            name="class"))


def record_decision(path: str | os.PathLike, dataset: Dataset, row_id: int, flag: str, decision: str) -> Path:
    """Add or replace one reviewer decision in the decisions file that the next cleaning run reads."""
    if flag not in FLAGS:
        raise WorkbenchError(f"unknown flag {flag!r}; choose one of {', '.join(FLAGS)}")
    if decision not in DECISIONS:
        raise WorkbenchError(f"unknown decision {decision!r}; choose one of {', '.join(DECISIONS)}")
    path = Path(path)
    existing = load_decisions(path, dataset) if path.exists() else pd.DataFrame(columns=["row_id", "flag",
                                                                                      "decision"])
    new = pd.DataFrame([{"row_id": int(row_id), "flag": flag, "decision": decision}])
    frame = pd.concat([existing, new], ignore_index=True).drop_duplicates(["row_id", "flag"], keep="last")
    load_decisions(frame.assign(row_id=frame["row_id"].astype(np.int64)).pipe(_with_checksum, dataset), dataset)
    return save_decisions(path, frame, dataset)


def _with_checksum(frame: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    frame.attrs["data_checksum"] = dataset.checksum
    return frame


def decisions_count(path: str | os.PathLike) -> int:
    path = Path(path)
    return len(json.loads(path.read_text()).get("decisions", [])) if path.exists() else 0


def duplicate_pairs(manifest: pd.DataFrame, cross_split_only: bool = True, limit: int = 16
                    ) -> tuple[list[tuple[int, int]], list[str]]:
    """Two members (positions) of each near-duplicate group, leaking groups first, with a caption each."""
    if "near_group" not in manifest:
        return [], []
    rows = manifest.assign(position=np.arange(len(manifest)))
    rows = rows[rows["near_group"] >= 0]
    if cross_split_only:
        rows = rows[rows["cross_split_leak"].astype(bool)]
    pairs, titles = [], []
    for _, members in rows.groupby("near_group", sort=False):
        if len(members) < 2:
            continue
        a, b = members.iloc[0], members.iloc[1]
        pairs.append((int(a["position"]), int(b["position"])))
        same = "=" if a["label"] == b["label"] else "≠"
        titles.append(f"{a['split'][:5]}/{b['split'][:5]} {a['label_name']}{same}{b['label_name']}")
        if len(pairs) >= limit:
            break
    return pairs, titles
