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
