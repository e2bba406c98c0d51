"""The notebooks as a user meets them in JupyterLab, in a real browser: JupyterLab serves a copy of notebooks/ on
loopback, headless Chromium (Debian's, driven by Playwright) opens each notebook, runs all its cells from the Run
menu and works its widgets — 01's image browser (class and page change the images), 05's dashboard on a run
directory (class, split and model change the figure; no broken example images) and 06's upload (a photo in, a
predicted label out). Afterwards the copied notebook folder holds nothing but the notebooks: every output went to the
``output_dir`` given. Saving 01 (Ctrl-S) after its run writes it back byte for byte as it was: the server runs with
fer_workbench.jupyter_hooks' output-stripping pre-save hook on the copied folder, as ``make lab`` does on notebooks/.

One server and one browser serve the three tests. Skips (never fails) when Chromium or Playwright is missing.
Set ``BROWSER_TEST_SCREENSHOTS=/some/dir`` to keep a screenshot of each notebook after its checks."""

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from _browser import chromium_path, free_port, launch_chromium, log_tail, stop_process, upload_photo, wait_for_server
from PIL import Image
from skimage import data as skdata

from fer_workbench import CLASS_NAMES
from fer_workbench.config import notebooks_dir

SERVER_START_S = 90
LAB_LOAD_S = 120  # the lab's page and the notebook's kernel, on 2 busy cores
RUN_ALL_S = {"01_explore": 150, "05_metrics": 240, "06_predict": 240}
HAPPY_TIP = 6.0  # logits added to happy's in the run's model (save_happy_model)
WIDGET_S = 60  # a widget's redraw after a change (a comm round trip and some numpy)
PREDICTION_S = 120
# Lab settings for a test: every cell attached to the DOM (no windowing), no news or update checks (no network).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


# The server's config (in its JUPYTER_CONFIG_DIR): the pre-save hook jupyter_server_config.py installs for
# notebooks/, here for the copied folder.
SERVER_CONFIG = """from fer_workbench.jupyter_hooks import output_stripping_hook
c.ContentsManager.pre_save_hook = output_stripping_hook({tree!r})
"""


def save_happy_model(path: Path) -> Path:
    """conftest.save_tiny_model's untrained CNN, its happy logit raised by more than its logits spread (about 2):
    it predicts happy for every face while its scores still vary with the face. So the dashboard meets both empty
    cases whatever the random initial weights: angry has no correct examples, happy no wrong ones."""
    import keras

    from fer_workbench.models import build_model
    from fer_workbench.models.io import save_model

    model = build_model("baseline_cnn", widths=[4, 8, 8], dense=[16, 8])
    logits = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    kernel, bias = logits.get_weights()
    bias[CLASS_NAMES.index("happy")] += HAPPY_TIP
    logits.set_weights([kernel, bias])
    return save_model(model, path, {"preprocessing": "none"})


def set_parameters(notebook: Path, **values) -> None:
    """Append assignments to the notebook's ``parameters`` cell, as a user editing it would."""
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n# set by tests/test_jupyterlab.py\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items())
    nbformat.write(nb, notebook)


class Lab:
    """A JupyterLab server on loopback and the browser context that visits it."""

    def __init__(self, url: str, token: str, log: Path, context, shots: Path):
        self.url, self.token, self.log, self.context, self.shots = url, token, log, context, shots

    def api(self, method: str, route: str):
        request = urllib.request.Request(f"{self.url}api/{route}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every session (and its kernel): each notebook's TensorFlow would otherwise hold its memory."""
        for session in self.api("GET", "sessions"):
            self.api("DELETE", f"sessions/{session['id']}")

    @contextmanager
    def notebook(self, name: str):
        """A new page with notebook ``name`` open, its kernel idle, after Run > Run All Cells has run every code
        cell without an error. Afterwards a screenshot is kept (on failure with the page's errors and the server
        log printed), the page is closed and its kernel shut down."""
        page = self.context.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        try:
            page.goto(f"{self.url}lab/tree/{name}.ipynb?reset&token={self.token}", timeout=LAB_LOAD_S * 1000)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=LAB_LOAD_S * 1000)
            page.locator(".jp-StatusBar-Widget").filter(has_text="| Idle").wait_for(timeout=LAB_LOAD_S * 1000)
            prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt")
            assert prompts.count() > 3 and all(p.strip() == "[ ]:" for p in prompts.all_inner_texts())
            page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            wait_for_run_all(page, prompts, RUN_ALL_S[name])
            yield page
            page.screenshot(path=str(self.shots / f"{name}.png"))
        except BaseException:
            page.screenshot(path=str(self.shots / f"{name}-failure.png"))
            print(f"{name}: page errors {json.dumps(page_errors)}; screenshot in {self.shots}\n"
                  f"jupyterlab log:\n{log_tail(self.log)}")
            raise
        finally:
            page.close()
            self.shut_down_kernels()


def wait_for_run_all(page, prompts, timeout: float) -> None:
    """Wait until every code cell shows an execution count; fail with the notebook's error output when the run
    stops short (JupyterLab stops Run All at the first error, leaving the later cells unnumbered)."""
    deadline = time.monotonic() + timeout
    indicator = page.locator(".jp-Notebook-ExecutionIndicator")
    started = False
    while time.monotonic() < deadline:
        texts = [p.strip() for p in prompts.all_inner_texts()]
        if all(re.fullmatch(r"\[\d+\]:", t) for t in texts):
            return
        started = started or any(t != "[ ]:" for t in texts)
        if started and "[*]:" not in texts and indicator.get_attribute("data-status") == "idle":
            time.sleep(2)  # the last cell's prompt and the indicator are updated by separate messages
            texts = [p.strip() for p in prompts.all_inner_texts()]
            if "[*]:" not in texts and not all(re.fullmatch(r"\[\d+\]:", t) for t in texts):
                errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
                pytest.fail("Run All stopped before the end: prompts " + " ".join(texts) + "\n" +
                            "\n".join(errors.all_inner_texts())[-4000:])
        time.sleep(1)
    pytest.fail(f"Run All did not finish within {timeout:.0f} s: prompts "
                + " ".join(p.strip() for p in prompts.all_inner_texts()))


def wait_until(condition, timeout: float, what: str):
    """Poll ``condition`` until it returns something true; fail naming ``what`` when it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout:.0f} s")


def image_digest(image) -> str | None:
    """SHA-256 of the bytes an ipywidgets Image shows (its ``src`` is a blob: URL of the PNG); None while it has
    none, or when the widget revoked that URL for a newer image between reading ``src`` and fetching it."""
    encoded = image.evaluate("""async (img) => {
        try {
            const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
            let text = ''; for (const b of bytes) text += String.fromCharCode(b);
            return bytes.length ? btoa(text) : null;
        } catch (error) { return null; }
    }""")
    return hashlib.sha256(base64.b64decode(encoded)).hexdigest() if encoded else None


@pytest.fixture(scope="module")
def lab_tree(tmp_path_factory):
    """A copy of notebooks/ (the checkout stays untouched) whose notebooks write into ``out/``: 01 and 06 into
    their own folders, 05 reads a run directory whose notebook-03 model is a small untrained CNN that predicts
    happy (the cheapest stand-in for `fer-workbench run --only 03`: notebook 05 only needs
    ``models/best/model.keras``). Smaller
    budgets than the defaults where they only cost time: 05's robustness sample, 06's folder mode."""
    from fer_workbench.models.registry import run_model_path

    root = tmp_path_factory.mktemp("jupyterlab")
    tree = root / "notebooks"
    shutil.copytree(notebooks_dir(), tree, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    out = root / "out"
    save_happy_model(run_model_path(out / "run"))
    set_parameters(tree / "01_explore.ipynb", output_dir=str(out / "explore"))
    set_parameters(tree / "05_metrics.ipynb", output_dir=str(out / "run"), robustness_rows=50)
    photos = root / "photos"  # folder mode on one photo: the upload is what this test is about
    photos.mkdir()
    Image.fromarray(skdata.astronaut()).save(photos / "astronaut.jpg")
    set_parameters(tree / "06_predict.ipynb", output_dir=str(out / "predict"), photos_dir=str(photos), shown_photos=1)
    return root, tree, out


@pytest.fixture(scope="module")
def lab(lab_tree):
    """JupyterLab on 127.0.0.1 (a free port, a token, no browser of its own, user settings, workspaces and
    Jupyter/IPython homes inside the test's folder, saving the copied notebooks without outputs), with Chromium on
    a fresh profile. Yields a ``Lab``."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium_path()  # skip before starting a server when there is no browser
    root, tree, _ = lab_tree
    for name, values in LAB_SETTINGS.items():
        path = root / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    (root / "jupyter-config").mkdir()
    (root / "jupyter-config" / "jupyter_server_config.py").write_text(SERVER_CONFIG.format(tree=str(tree)))
    shots = Path(os.environ.get("BROWSER_TEST_SCREENSHOTS") or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(24)
    # FER_WORKBENCH_HOME: the test session's scratch home (conftest), shared with the other tests' datasets.
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "jupyter-config"),
               JUPYTER_DATA_DIR=str(root / "jupyter-data"), JUPYTER_RUNTIME_DIR=str(root / "jupyter-runtime"),
               IPYTHONDIR=str(root / "ipython"), TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS="2",
               TF_NUM_INTRAOP_THREADS="2", TF_NUM_INTEROP_THREADS="1", PYTHONUNBUFFERED="1")
    log = root / "jupyterlab.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False",
             f"--ServerApp.root_dir={tree}", "--ServerApp.terminals_enabled=False", "--ServerApp.allow_root=True",
             f"--LabApp.user_settings_dir={root / 'settings'}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
             "--LabApp.news_url=", "--LabApp.extension_manager=readonly"],
            cwd=tree, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_server(process, url + "api/status", log, SERVER_START_S, "jupyter lab")
        with sync_api.sync_playwright() as playwright:
            context = launch_chromium(playwright, root / "chromium-profile", {"width": 1400, "height": 1000})
            try:
                yield Lab(url, token, log, context, shots)
            finally:
                context.close()
    finally:
        stop_process(process)


def stray_files(tree: Path) -> list[str]:
    """Files in the copied notebook folder other than the notebooks themselves (and JupyterLab's checkpoints,
    which .gitignore ignores)."""
    notebooks = {p.name for p in notebooks_dir().glob("*.ipynb")}
    return sorted(str(p.relative_to(tree)) for p in tree.rglob("*")
                  if p.is_file() and ".ipynb_checkpoints" not in p.parts and p.name not in notebooks)


def dropdown(box, label: str):
    """The <select> of the ipywidgets Dropdown labelled ``label`` inside ``box``."""
    return box.locator(f".widget-dropdown:has(> label:text-is('{label}')) select")


def row_ids(status: str) -> list[int]:
    """The row ids the image browser's status line lists."""
    return [int(r) for r in status.split("row ids:")[1].replace(",", " ").split()]


def browser_state(browser) -> tuple[str, str] | None:
    """The image browser's status line and the digest of the image it shows (None while it shows none)."""
    digest = image_digest(browser.locator("img.widget-image"))
    return (browser.locator(".widget-html-content").inner_text(), digest) if digest else None


def changed_browser_state(browser, before: tuple[str, str]):
    state = browser_state(browser)
    return state if state and state[1] != before[1] and state[0] != before[0] else None


def save_with_ctrl_s(page, notebook: Path) -> None:
    """Select the first cell (command mode, focus out of any widget), press Ctrl-S and wait for the file's write."""
    written = notebook.stat().st_mtime_ns
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Control+s")
    wait_until(lambda: notebook.stat().st_mtime_ns > written, WIDGET_S, f"Ctrl-S did not save {notebook.name}")


def test_image_browser_class_and_page_change_the_images(lab, lab_tree):
    _, tree, out = lab_tree
    as_committed = (tree / "01_explore.ipynb").read_bytes()  # with the test's parameters, without outputs
    with lab.notebook("01_explore") as page:
        browser = page.locator(".widget-vbox").filter(has=page.locator("img.widget-image")).filter(
            has=page.locator(".widget-text input[type=number]")).last
        browser.scroll_into_view_if_needed()
        first = wait_until(lambda: browser_state(browser), WIDGET_S, "the image browser shows no image")
        pages_all = int(re.search(r"on page 1/(\d+)", first[0]).group(1))

        dropdown(browser, "class").select_option("happy")
        happy = wait_until(lambda: changed_browser_state(browser, first), WIDGET_S,
                           "the image did not change after choosing the class happy")
        pages_happy = int(re.search(r"on page 1/(\d+)", happy[0]).group(1))
        assert pages_happy < pages_all, (first[0], happy[0])
        assert row_ids(happy[0]) != row_ids(first[0])

        page_box = browser.locator(".widget-text input[type=number]")
        page_box.fill("2")
        page_box.press("Enter")
        second = wait_until(lambda: changed_browser_state(browser, happy), WIDGET_S,
                            "the image did not change after going to page 2")
        assert f"on page 2/{pages_happy}" in second[0], second[0]
        assert not set(row_ids(second[0])) & set(row_ids(happy[0]))

        save_with_ctrl_s(page, tree / "01_explore.ipynb")
        assert page.locator(".jp-OutputArea-output").count() > 0  # the lab still shows them; the file has none
    saved = nbformat.read(tree / "01_explore.ipynb", as_version=4)
    assert [(c.outputs, c.execution_count) for c in saved.cells if c.cell_type == "code"] == \
        [([], None)] * sum(c.cell_type == "code" for c in saved.cells)
    assert (tree / "01_explore.ipynb").read_bytes() == as_committed
    assert (out / "explore").is_dir() and any((out / "explore").iterdir())
    assert stray_files(tree) == []


def figure_state(dashboard) -> tuple[str, list[str]] | None:
    """The dashboard's plotly figure as drawn: its title and the path of every line (None while none is drawn:
    the Output widget clears and redraws it on every change)."""
    return dashboard.evaluate("""(box) => {
        const figure = box.querySelector('.widget-output .js-plotly-plot');
        const title = figure && figure.querySelector('.gtitle');
        const lines = figure ? Array.from(figure.querySelectorAll('.scatterlayer path.js-line')) : [];
        return title && lines.length ? [title.textContent, lines.map((line) => line.getAttribute('d'))] : null;
    }""")


def figure_titled(dashboard, ending: str):
    state = figure_state(dashboard)
    return state if state and state[0].endswith(ending) else None


def dashboard_pictures(dashboard, name: str) -> list[dict] | None:
    """The dashboard's example images, each with the text of the label above it, whether it is shown, and its
    natural width; None until the labels are class ``name``'s, every shown image has loaded and every image agrees
    with its label ("(0 in all": no examples, so no image shown)."""
    pictures = dashboard.evaluate("""(box) => Array.from(box.querySelectorAll('img.widget-image'), (img) => ({
        label: img.previousElementSibling ? img.previousElementSibling.textContent : '',
        shown: getComputedStyle(img).display !== 'none', loaded: img.complete, width: img.naturalWidth}))""")
    settled = all(p["loaded"] or not p["shown"] for p in pictures)
    agree = all(name in p["label"] and p["shown"] != ("(0 in all" in p["label"]) for p in pictures)
    return pictures if settled and agree else None


def assert_no_broken_pictures(dashboard, name: str) -> list[dict]:
    """Wait for the example images of class ``name`` (dashboard_pictures); fail on a broken one. Returns them."""
    pictures = wait_until(lambda: dashboard_pictures(dashboard, name), WIDGET_S,
                          "the dashboard's example images did not match their labels (shown exactly when some)")
    assert len(pictures) == 2, pictures
    assert all(p["width"] > 0 for p in pictures if p["shown"]), pictures  # 0: a broken-image icon
    return pictures


def test_metrics_dashboard_class_and_split_change_the_figure(lab, lab_tree):
    from fer_workbench.models.registry import RUN_LABEL

    _, tree, _ = lab_tree
    with lab.notebook("05_metrics") as page:
        dashboard = page.locator(".widget-vbox").filter(has=page.locator(".widget-output")).filter(
            has=page.locator(".widget-dropdown:has(> label:text-is('split'))")).last
        dashboard.scroll_into_view_if_needed()
        first = wait_until(lambda: figure_state(dashboard), WIDGET_S, "the dashboard drew no curves")
        assert first[0].endswith("PublicTest: angry"), first[0]
        assert_no_broken_pictures(dashboard, "angry")

        dropdown(dashboard, "class").select_option("happy")
        happy = wait_until(lambda: figure_titled(dashboard, "PublicTest: happy"), WIDGET_S,
                           "the figure's title did not follow the class")
        assert happy[1] != first[1]
        assert "<b>happy</b>" in dashboard.locator(".widget-html-content").first.inner_html()
        assert_no_broken_pictures(dashboard, "happy")

        dropdown(dashboard, "split").select_option("PrivateTest")
        private = wait_until(lambda: figure_titled(dashboard, "PrivateTest: happy"), WIDGET_S,
                             "the figure's title did not follow the split")
        assert private[1] != happy[1]
        assert_no_broken_pictures(dashboard, "happy")

        # Two candidate models (the run's small CNN and the shipped one): the model selector keeps split and class.
        models = dropdown(dashboard, "model")
        labels = models.evaluate("(select) => Array.from(select.options, (option) => option.value)")
        assert len(labels) == 2 and models.input_value() in labels, labels
        other = next(label for label in labels if label != models.input_value())
        models.select_option(other)
        switched = wait_until(lambda: figure_titled(dashboard, f"{other}, PrivateTest: happy"), WIDGET_S,
                              "the figure's title did not follow the model")
        assert switched[1] != private[1]
        assert_no_broken_pictures(dashboard, "happy")

        # The run's model predicts happy: no wrong happy faces, no correct angry ones; those images are hidden.
        if models.input_value() != RUN_LABEL:
            models.select_option(RUN_LABEL)
            wait_until(lambda: figure_titled(dashboard, f"{RUN_LABEL}, PrivateTest: happy"), WIDGET_S,
                       "the figure's title did not follow the model")
        assert [p["shown"] for p in assert_no_broken_pictures(dashboard, "happy")] == [True, False]
        dropdown(dashboard, "class").select_option("angry")
        wait_until(lambda: figure_titled(dashboard, f"{RUN_LABEL}, PrivateTest: angry"), WIDGET_S,
                   "the figure's title did not follow the class")
        assert [p["shown"] for p in assert_no_broken_pictures(dashboard, "angry")] == [False, True]
    assert stray_files(tree) == []


def test_upload_a_photo_and_read_its_label(lab, lab_tree, tmp_path):
    _, tree, out = lab_tree
    photo = tmp_path / "upload_astronaut.jpg"
    Image.fromarray(skdata.astronaut()).save(photo, quality=92)
    with lab.notebook("06_predict") as page:
        status, face_line, box_text = upload_photo(page, photo, PREDICTION_S)
    assert "1 photo(s): 1 face(s), 0 with a problem" in status, status
    assert photo.name in box_text, box_text
    match = re.match(r"face 1: (\w+) \((\d+)%\)", face_line)
    assert match and match.group(1) in CLASS_NAMES, face_line
    assert 0 <= int(match.group(2)) <= 100
    assert (out / "predict" / "results" / "06_predict.json").is_file()
    assert stray_files(tree) == []
