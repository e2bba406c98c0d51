"""metrics_dashboard's example images: a class with no correct (or no wrong) predictions hides that image instead
of showing an empty one (a broken-image icon in JupyterLab), and shows it again once there are examples."""

import io

import numpy as np
from PIL import Image

from fer_workbench import CLASS_NAMES, widgets


def shown(picture) -> bool:
    return picture.layout.display != "none"


def test_empty_example_images_are_hidden_and_come_back():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(len(CLASS_NAMES)), 4)
    proba = np.full((len(y), len(CLASS_NAMES)), 0.05)
    proba[:, 0] = 0.7  # always "angry": every angry face right, every other face wrong
    images = rng.integers(0, 256, (len(y), 48, 48), dtype=np.uint8)
    dashboard = widgets.metrics_dashboard({"A": (y, proba, images), "B": (y, proba)}, class_names=CLASS_NAMES)
    split_box, class_box = dashboard.children[0].children
    right_label, right_pic, wrong_label, wrong_pic = dashboard.children[3:7]

    assert class_box.value == "angry" and "(4 in all)" in right_label.value and "(0 in all" in wrong_label.value
    assert shown(right_pic) and Image.open(io.BytesIO(right_pic.value)).width > 0
    assert not shown(wrong_pic) and wrong_pic.value == b""

    class_box.value = "happy"
    assert "(0 in all)" in right_label.value and not shown(right_pic) and right_pic.value == b""
    assert shown(wrong_pic) and wrong_pic.value

    split_box.value = "B"  # no images given for this split
    assert "no images" in wrong_label.value and not shown(right_pic) and not shown(wrong_pic)

    split_box.value, class_box.value = "A", "angry"
    assert shown(right_pic) and right_pic.value and not shown(wrong_pic)
