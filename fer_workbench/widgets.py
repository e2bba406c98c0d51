"""ipywidgets views for JupyterLab. Headless runs (papermill → HTML) carry no live widget state, so every
notebook shows a static figure beside each widget."""

from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
from PIL import Image

from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
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
    from fer_workbench.cleaning.manifest import FLAGS
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


# ------------------------------------------------------------------------------------ saliency (notebook 04)


def saliency_picker(model, images: np.ndarray, labels: np.ndarray, predictions: np.ndarray, class_names,
                    methods=("gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad"), scale: int = 6,
                    **saliency_kwargs) -> widgets.VBox:
    """Pick a true class, a method, correctly / wrongly classified and an image: shows the image and the map
    over it (computed on demand, cached). ``saliency_kwargs`` go to ``saliency.saliency_maps``."""
    from fer_workbench.plots import overlay_rgb
    from fer_workbench.saliency import saliency_maps

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    class_box = widgets.Dropdown(options=list(class_names), description="class")
    method_box = widgets.Dropdown(options=list(methods), description="method")
    outcome_box = widgets.ToggleButtons(options=["correct", "wrong"], description="prediction")
    index_box = widgets.BoundedIntText(value=1, min=1, max=1, description="image")
    picture = widgets.Image(format="png")
    details = widgets.HTML()
    cache: dict = {}

    def chosen() -> np.ndarray:
        k = list(class_names).index(class_box.value)
        hit = predictions == labels
        return np.flatnonzero((labels == k) & (hit if outcome_box.value == "correct" else ~hit))

    def show(*_):
        positions = chosen()
        index_box.max = max(1, len(positions))
        if not len(positions):
            picture.value = b""
            details.value = f"No {outcome_box.value}ly classified <b>{class_box.value}</b> images here."
            return
        i = int(positions[min(index_box.value, len(positions)) - 1])
        key = (i, method_box.value)
        try:
            if key not in cache:
                cache[key] = saliency_maps(model, images[i], int(predictions[i]), method_box.value,
                                           **saliency_kwargs)
        except Exception as exc:  # noqa: BLE001 -- shown, not raised: a widget callback has nowhere to raise to
            picture.value, details.value = b"", f"{method_box.value} failed: {exc}"
            return
        gray = np.repeat(np.kron(images[i], np.ones((scale, scale), np.uint8))[..., None], 3, axis=-1)
        heat = overlay_rgb(np.kron(images[i], np.ones((scale, scale), np.uint8)),
                           np.kron(cache[key], np.ones((scale, scale), np.float32)))
        picture.value = png_bytes(np.concatenate([gray, np.full((gray.shape[0], 4, 3), 255, np.uint8), heat], 1))
        details.value = (f"image {index_box.value}/{len(positions)} (position {i}) · true <b>{class_box.value}</b> · "
                         f"predicted <b>{class_names[int(predictions[i])]}</b> · map of the predicted class "
                         f"({method_box.value})")

    def reset(*_):
        index_box.value = 1
        show()

    for box in (class_box, outcome_box):
        box.observe(reset, names="value")
    for box in (method_box, index_box):
        box.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([class_box, method_box]), widgets.HBox([outcome_box, index_box]), picture,
                         details])


# ------------------------------------------------------------------------------------ predictions (notebook 06)


def plain_title(text: str, limit: int = 80) -> str:
    """A file name or message as a matplotlib title: shown literally (every ``$`` escaped, so a name such as
    ``holiday $\\foo$.png`` is not parsed as math text), control characters escaped, cut to ``limit``."""
    from fer_workbench.errors import cap, printable

    return cap(printable(str(text)), limit).replace("$", r"\$")


def photo_views(prediction, model=None, method: str | None = "gradcam") -> list:
    """What to display for one ``predict.PhotoPrediction``: a heading, then either a message (unreadable input,
    no face) or the photo with numbered boxes and, per face, its top emotion, a probability bar chart and (with a
    ``model`` and a ``method``) the saliency map of the top class over the face crop. Objects for IPython's
    ``display``; never raises for a bad prediction, so both the upload widget and a static cell can use it."""
    from html import escape

    from IPython.display import HTML

    from fer_workbench.plots import face_scores_bar, method_comparison, photo_with_boxes

    name = escape(str(prediction.file))
    views: list = [HTML(f"<h4>{name}</h4>")]
    if not prediction.faces:
        message = prediction.error or "no face found"
        views.append(HTML(f'<p style="color:#b00020">⚠ {escape(message)}</p>'))
        photo = getattr(prediction, "photo", None)
        try:
            if photo is not None:
                views.append(photo_with_boxes(photo.rgb, [], title=plain_title(f"{prediction.file}: {message}"),
                                              width=4.0))
        except Exception as exc:  # noqa: BLE001 -- a rendering problem becomes a message, never a traceback
            views.append(HTML(f'<p style="color:#b00020">⚠ could not show {name}: {escape(str(exc))}</p>'))
        return views
    try:
        if prediction.photo is not None:
            views.append(photo_with_boxes(prediction.photo.rgb, prediction.faces,
                                          title=plain_title(prediction.file)))
        maps = None
        if model is not None and method:
            from fer_workbench.saliency import saliency_maps

            crops = np.stack([face.crop for face in prediction.faces])
            classes = [list(face.scores).index(face.label) for face in prediction.faces]  # the model's class order
            try:
                maps = saliency_maps(model, crops, classes, method)
            except Exception as exc:  # noqa: BLE001
                views.append(HTML(f"<p>{escape(method)} maps unavailable: {escape(str(exc))}</p>"))
        for k, face in enumerate(prediction.faces, start=1):
            top = max(face.scores.values()) if face.scores else float("nan")
            views.append(HTML(f"<p><b>face {k}</b>: <b>{escape(face.label)}</b> ({top:.0%}) · box x, y, w, h = "
                              f"{tuple(int(v) for v in face.box)} · detector {escape(str(face.detector))}</p>"))
            views.append(face_scores_bar(face.scores, title=f"face {k}: class probabilities"))
            if maps is not None:
                views.append(method_comparison(face.crop[None], {f"{method}: {face.label}": maps[k - 1][None]},
                                               row_titles=[f"face {k} crop (48×48)"], size=1.8))
    except Exception as exc:  # noqa: BLE001 -- a rendering problem becomes a message, never a traceback
        views.append(HTML(f'<p style="color:#b00020">⚠ could not show {name}: {escape(str(exc))}</p>'))
    return views


def predict_uploads(predictor, value) -> list:
    """``PhotoPrediction``s for a FileUpload ``value`` (ipywidgets 8: a tuple of dicts with ``name``,
    ``content``, ``type``, ``size``; ipywidgets 7: a dict name → dict). Each problem (not an image, too large,
    no face, anything unexpected) becomes that photo's ``error``, naming the file; nothing raises.

    Size limit: ipywidgets 8's FileUpload has no option to refuse large files in the browser, so the limit
    (photos.MAX_PHOTO_BYTES, 30 MB) is enforced here, on receipt, from the reported size before the content is
    copied; the Jupyter server's websocket message limit (tornado's, 10 MB by default unless raised) may refuse
    a large upload even earlier."""
    from fer_workbench.photos import MAX_PHOTO_BYTES
    from fer_workbench.predict import PhotoPrediction

    items = list(value.values()) if isinstance(value, dict) else list(value or ())
    results = []
    for k, item in enumerate(items, start=1):
        name = str(item.get("name") or (item.get("metadata") or {}).get("name") or f"upload {k}")
        try:
            raw = item.get("content") or b""
            size = max(int(item.get("size") or 0), len(raw))
            if size > MAX_PHOTO_BYTES:
                results.append(PhotoPrediction(file=name, readable=False,
                                               error=f"{name}: {size / 1e6:.1f} MB is too large (limit "
                                                     f"{MAX_PHOTO_BYTES / 1e6:g} MB)"))
                continue
            content = bytes(raw)
            results.append(predictor.predict_photo(content, name=name))
        except Exception as exc:  # noqa: BLE001 -- the widget shows it as a message
            results.append(PhotoPrediction(file=name, readable=False, error=f"{name}: {exc}"))
    return results


def predict_upload(predictor, method: str | None = "gradcam") -> widgets.VBox:
    """Upload photos (several at once): each is shown with numbered face boxes, per-face probability bars, the
    top emotion and a saliency overlay of the face crop (``photo_views``); problems appear as messages. The
    box's ``handle(value)`` runs what an upload triggers; ``last`` holds the latest predictions."""
    from IPython.display import display

    from fer_workbench.photos import MAX_PHOTO_BYTES

    upload = widgets.FileUpload(accept="image/*", multiple=True, description="photos")
    clear = widgets.Button(description="clear")
    prompt = f"Choose one or more photos. Up to {MAX_PHOTO_BYTES / 1e6:g} MB each."
    status = widgets.HTML(prompt)
    output = widgets.Output()
    box = widgets.VBox([widgets.HBox([upload, clear]), status, output])
    box.last = []

    def handle(value):
        results = predict_uploads(predictor, value)
        box.last = results
        faces = sum(len(r.faces) for r in results)
        problems = sum(1 for r in results if not r.faces)
        status.value = f"{len(results)} photo(s): {faces} face(s), {problems} with a problem"
        output.clear_output()
        with output:
            for result in results:
                for view in photo_views(result, predictor.model, method):
                    display(view)
        return results

    def on_upload(change):
        if change["new"]:
            handle(change["new"])

    upload.observe(on_upload, names="value")
    clear.on_click(lambda _: (output.clear_output(), setattr(status, "value", prompt)))
    box.handle = handle
    return box


MAX_CLIP_UPLOAD_BYTES = 500_000_000  # an upload is held in memory by the widget before it is saved


def video_views(clip) -> list:
    """What to display for one ``video.VideoPrediction``: a heading, its summary or problem, the emotion timeline
    per track, the key frames with numbered boxes and the tracks table. Never raises for a bad clip."""
    from html import escape

    from IPython.display import HTML

    from fer_workbench.plots import video_key_frames, video_timeline

    views: list = [HTML(f"<h4>{escape(str(clip.file))}</h4>")]
    if clip.readable:
        views.append(HTML(f"<p>{escape(clip.summary())}</p>"))
    if clip.error:
        views.append(HTML(f'<p style="color:#b00020">⚠ {escape(clip.message)}</p>'))
    if not clip.frames:
        return views
    try:
        views += [video_timeline(clip), video_key_frames(clip), clip.tracks_table()]
    except Exception as exc:  # noqa: BLE001 -- a rendering problem becomes a message, never a traceback
        views.append(HTML(f'<p style="color:#b00020">⚠ could not show {escape(str(clip.file))}: '
                          f"{escape(str(exc))}</p>"))
    return views


def save_clip_uploads(value, folder) -> tuple[list, list[str]]:
    """Write the clips of a FileUpload ``value`` into ``folder`` (atomically, under their own file name) and return
    (paths written, one message per upload refused: too large, not a video name, empty)."""
    from pathlib import Path

    from fer_workbench.clips import ANIMATION_SUFFIXES, VIDEO_SUFFIXES
    from fer_workbench.files import atomic_write_bytes

    folder = Path(folder).expanduser()
    items = list(value.values()) if isinstance(value, dict) else list(value or ())
    saved, problems = [], []
    for k, item in enumerate(items, start=1):
        name = Path(str(item.get("name") or (item.get("metadata") or {}).get("name") or f"upload {k}")).name
        raw = item.get("content") or b""
        size = max(int(item.get("size") or 0), len(raw))
        if Path(name).suffix.lower() not in VIDEO_SUFFIXES | ANIMATION_SUFFIXES:
            problems.append(f"{name}: not a video file name (expected one of "
                            f"{', '.join(sorted(VIDEO_SUFFIXES | ANIMATION_SUFFIXES))})")
        elif size > MAX_CLIP_UPLOAD_BYTES:
            problems.append(f"{name}: {size / 1e6:.0f} MB is too large to upload (limit "
                            f"{MAX_CLIP_UPLOAD_BYTES / 1e6:g} MB; set video_path to the file instead)")
        elif size == 0:
            problems.append(f"{name}: empty file (0 bytes)")
        else:
            saved.append(atomic_write_bytes(folder / name, bytes(raw)))
    return saved, problems


def video_picker(predictor, folder, **options) -> widgets.VBox:
    """Choose a clip from ``folder`` or upload one (saved into ``folder``); it is analysed
    (``predictor.predict_video(path, **options)``) and shown with ``video_views``. The box's ``analyse(path)``
    and ``receive(value)`` run what choosing and uploading trigger; ``last`` holds the latest result."""
    from pathlib import Path

    from IPython.display import display

    from fer_workbench.clips import ANIMATION_SUFFIXES, VIDEO_SUFFIXES

    folder = Path(folder).expanduser()

    def clips() -> list[str]:
        found = folder.iterdir() if folder.is_dir() else ()
        return sorted(p.name for p in found if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES | ANIMATION_SUFFIXES)

    choose = widgets.Dropdown(options=clips(), value=None, description="clip")
    upload = widgets.FileUpload(accept="video/*,.gif,.mkv,.webm,.avi", multiple=False, description="upload")
    status = widgets.HTML(f"Choose a clip in {folder} or upload one (up to {MAX_CLIP_UPLOAD_BYTES / 1e6:g} MB).")
    output = widgets.Output()
    box = widgets.VBox([widgets.HBox([choose, upload]), status, output])
    box.last = None

    def analyse(path):
        status.value = f"analysing {Path(path).name} …"
        output.clear_output()
        with output:
            clip = predictor.predict_video(path, **options)
            for view in video_views(clip):
                display(view)
        box.last = clip
        status.value = clip.summary() if clip.readable else clip.message
        return clip

    def receive(value):
        saved, problems = save_clip_uploads(value, folder)
        if saved:
            choose.options = clips()
            choose.value = saved[-1].name  # analysing follows from the selection
        if problems:
            status.value = "; ".join(problems)
        return saved

    choose.observe(lambda change: change["new"] and analyse(folder / change["new"]), names="value")
    upload.observe(lambda change: change["new"] and receive(change["new"]), names="value")
    box.analyse, box.receive = analyse, receive
    return box


def _class_numbers(y_true, proba, class_names, k: int) -> str:
    from fer_workbench.metrics import per_class_table, top_confusions

    table = per_class_table(y_true, proba, class_names)
    row = table.iloc[k]
    y_pred = np.asarray(proba).argmax(axis=1)
    confusions = top_confusions(y_true, y_pred, class_names, k=len(class_names) ** 2)
    mine = confusions[confusions["true"] == class_names[k]].head(3)
    confused = ", ".join(f"{r.predicted} ({r.count}, {r.share_of_true_class:.0%})" for r in mine.itertuples()) or "—"

    def fmt(value) -> str:  # NaN for classes absent from the split
        return "—" if np.isnan(value) else f"{value:.3f}"

    return (f"<b>{class_names[k]}</b>: support {int(row['support'])} · precision {fmt(row['precision'])} · "
            f"recall {fmt(row['recall'])} · F1 {fmt(row['f1'])} · ROC AUC {fmt(row['auc'])} · "
            f"AP {fmt(row['average_precision'])}<br>most often mistaken for: {confused}")


def metrics_dashboard(y_true, proba=None, class_names=None, images=None, examples: int = 10) -> widgets.VBox:
    """Per-class view of a model's results: pick a split and a class to see its numbers, its ROC and
    precision-recall curves, and example images it gets right and wrong.

    Pass ``y_true, proba[, images]`` for one split; a dict ``{split: (y_true, proba[, images])}`` as the first
    argument for a split selector; or ``{model: {split: (...)}}`` for a model selector as well (shown when there
    are two or more models).
    """
    from IPython.display import display

    from fer_workbench import CLASS_NAMES
    from fer_workbench.metrics import per_class_table, pr_curves, roc_curves
    from fer_workbench.plots import class_selector_figure

    if not isinstance(y_true, dict):
        y_true = {"data": (y_true, proba, images)}
    nested = all(isinstance(v, dict) for v in y_true.values())
    results = y_true if nested else {"model": y_true}
    if not results or not all(results.values()):
        raise WorkbenchError("metrics_dashboard needs at least one model with at least one split")
    results = {model: {name: (np.asarray(v[0]), np.asarray(v[1]), v[2] if len(v) > 2 else None)
                       for name, v in splits.items()} for model, splits in results.items()}
    class_names = list(class_names or CLASS_NAMES)
    model_box = widgets.Dropdown(options=list(results), description="model")
    split_box = widgets.Dropdown(options=list(results[model_box.value]), description="split")
    class_box = widgets.Dropdown(options=class_names, description="class")
    numbers = widgets.HTML()
    curves = widgets.Output()
    right_label, wrong_label = widgets.HTML(), widgets.HTML()
    right_pic, wrong_pic = widgets.Image(format="png"), widgets.Image(format="png")

    def show_mosaic(picture: widgets.Image, chosen) -> None:
        # Hidden when there is nothing to show: an Image with no bytes is a broken-image icon in JupyterLab.
        if chosen is None:
            picture.layout.display, picture.value = "none", b""
        else:
            picture.value, picture.layout.display = png_bytes(image_mosaic(chosen, columns=examples)), None

    def change_model(*_):
        # Options first, with redraw unhooked: a new option list may reset the value to a split it lacks yet.
        split_box.unobserve(redraw, names="value")
        current = split_box.value
        split_box.options = list(results[model_box.value])
        if current in split_box.options:
            split_box.value = current
        split_box.observe(redraw, names="value")
        redraw()

    def redraw(*_):
        y, p, imgs = results[model_box.value][split_box.value]
        k = class_names.index(class_box.value)
        numbers.value = _class_numbers(y, p, class_names, k)
        roc, pr = roc_curves(y, p, class_names), pr_curves(y, p, class_names)
        name = class_box.value
        table = per_class_table(y, p, class_names)
        curves.clear_output(wait=True)
        with curves:
            if name in pr:
                fig = class_selector_figure({name: roc[name]} if name in roc else {}, {name: pr[name]},
                                            {name: table.loc[name, "auc"]} if name in roc else None,
                                            {name: table.loc[name, "average_precision"]})
                fig.layout.updatemenus = ()
                title = f"{model_box.value}, " if len(results) > 1 else ""
                display(fig.update_layout(title=f"{title}{split_box.value}: {name}", height=380))
            else:
                print(f"no {name} images in {split_box.value}")
        if imgs is None:
            right_label.value, wrong_label.value = "", "<i>(no images given)</i>"
            show_mosaic(right_pic, None)
            show_mosaic(wrong_pic, None)
            return
        pred = p.argmax(axis=1)
        right = np.flatnonzero((y == k) & (pred == k))[:examples]
        wrong = np.flatnonzero((y == k) & (pred != k))[:examples]
        right_label.value = f"correct {name} ({int(((y == k) & (pred == k)).sum())} in all):"
        wrong_label.value = (f"{name} predicted as something else ({int(((y == k) & (pred != k)).sum())} in all; "
                             f"predicted, left to right: {', '.join(class_names[j] for j in pred[wrong]) or '—'}):")
        show_mosaic(right_pic, np.asarray(imgs)[right] if len(right) else None)
        show_mosaic(wrong_pic, np.asarray(imgs)[wrong] if len(wrong) else None)

    model_box.observe(change_model, names="value")
    split_box.observe(redraw, names="value")
    class_box.observe(redraw, names="value")
    redraw()
    selectors = [model_box, split_box, class_box] if len(results) > 1 else [split_box, class_box]
    return widgets.VBox([widgets.HBox(selectors), numbers, curves, right_label, right_pic,
                         wrong_label, wrong_pic])
