"""ipywidgets views for JupyterLab. Headless runs (papermill → HTML) carry no live widget state, so every
notebook shows a static figure beside each widget."""

from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
from PIL import Image

from fer_workbench.data.dataset import Dataset
from fer_workbench.explore import select_page
from fer_workbench.plots import image_mosaic

ALL = "(all)"


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def image_browser(dataset: Dataset, per_page: int = 40, columns: int = 10) -> widgets.VBox:
    """Browse images by class, split and page; each image's row id is listed under the grid."""
    class_box = widgets.Dropdown(options=[ALL, *dataset.class_names], description="class")
    split_box = widgets.Dropdown(options=[ALL, *dataset.split_names()], description="split")
    page_box = widgets.BoundedIntText(value=1, min=1, max=1, description="page")
    status = widgets.HTML()
    picture = widgets.Image(format="png")

    def redraw(*_):
        positions, pages = select_page(dataset, None if class_box.value == ALL else class_box.value,
                                       None if split_box.value == ALL else split_box.value,
                                       page_box.value - 1, per_page)
        page_box.max = pages
        picture.value = png_bytes(image_mosaic(dataset.images[positions], columns=columns))
        ids = ", ".join(str(r) for r in dataset.row_ids[positions])
        status.value = (f"<b>{len(positions)}</b> images on page {page_box.value}/{pages} · "
                        f"row ids: <small>{ids}</small>")

    for box in (class_box, split_box):
        box.observe(lambda change: (setattr(page_box, "value", 1), redraw()), names="value")
    page_box.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([class_box, split_box, page_box]), picture, status])


def cleaning_review(dataset: Dataset, manifest, decisions_path, flags=None, limit: int = 200) -> widgets.VBox:
    """Step through flagged images (most suspicious first) and accept or reject each flag; decisions are
    written to ``decisions_path`` at once and honoured by the next cleaning run."""
    from fer_workbench.cleaning.pipeline import FLAGS
    from fer_workbench.cleaning.review import captions, ranked, record_decision

    flags = [f for f in (flags or FLAGS) if f"flag_{f}" in manifest]
    flag_box = widgets.Dropdown(options=flags, description="flag")
    index_box = widgets.BoundedIntText(value=1, min=1, max=1, description="image")
    picture = widgets.Image(format="png")
    details = widgets.HTML()
    accept = widgets.Button(description="accept flag (exclude)", button_style="danger")
    reject = widgets.Button(description="reject flag (keep)", button_style="success")
    status = widgets.HTML()
    state = {"rows": None}

    def current():
        rows = state["rows"]
        return None if rows is None or not len(rows) else rows.iloc[index_box.value - 1]

    def show(*_):
        row = current()
        if row is None:
            picture.value, details.value = b"", f"No images carry the <b>{flag_box.value}</b> flag."
            return
        picture.value = png_bytes(image_mosaic(dataset.images[[int(row["position"])]], columns=1, scale=5))
        decision = row.get(f"decision_{flag_box.value}", "") or "not reviewed"
        details.value = (f"{captions(row.to_frame().T, flag_box.value, dataset.class_names)[0]} · split "
                         f"{row['split']} · reason: {row.get('reason', '') or '—'} · decision: <b>{decision}</b>")

    def load_flag(*_):
        state["rows"] = ranked(manifest, flag_box.value, limit=limit)
        index_box.max = max(1, len(state["rows"]))
        index_box.value = 1
        show()

    def decide(decision):
        row = current()
        if row is None:
            return
        record_decision(decisions_path, dataset, int(row["row_id"]), flag_box.value, decision)
        manifest.loc[manifest["row_id"] == row["row_id"], f"decision_{flag_box.value}"] = decision
        state["rows"].loc[row.name, f"decision_{flag_box.value}"] = decision
        status.value = f"saved: row {row['row_id']} {flag_box.value} → {decision} (applied on the next cleaning run)"
        if index_box.value < index_box.max:
            index_box.value += 1
        else:
            show()

    flag_box.observe(load_flag, names="value")
    index_box.observe(show, names="value")
    accept.on_click(lambda _: decide("accept"))
    reject.on_click(lambda _: decide("reject"))
    load_flag()
    return widgets.VBox([widgets.HBox([flag_box, index_box]), picture, details, widgets.HBox([accept, reject]),
                         status])
