"""End to end in a real browser: Voilà serves notebook 06 on loopback, headless Chromium (Debian's, driven by
Playwright) uploads a face photo through the FileUpload widget and the predicted label is read from the page.

Skips (never fails) when Chromium, Playwright or Voilà is missing; `.ci/run` installs Debian's chromium where
it can. Set ``BROWSER_TEST_SCREENSHOT=/some/file.png`` to keep a screenshot of the page after the upload."""

import json
import os
import re
import subprocess
import sys

import nbformat
import pytest
from _browser import chromium_path, free_port, launch_chromium, log_tail, stop_process, upload_photo, wait_for_server
from conftest import save_tiny_model
from PIL import Image
from skimage import data as skdata

from fer_workbench import CLASS_NAMES
from fer_workbench.config import project_root

NOTEBOOK = project_root() / "notebooks" / "06_predict.ipynb"
SERVER_START_S = 60
PAGE_LOAD_S = 180  # Voilà answers the page once every cell has run (TensorFlow import, folder mode)
PREDICTION_S = 90

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def voila_page(tmp_path):
    """Voilà serving a copy of notebook 06 from ``tmp_path`` with ``output_dir = "reports"``, relative to the
    notebook: ``tmp_path/reports``, where a small untrained model waits as the run's best model. (The notebook's own
    default, None, is ``records.resolve_output_dir``'s default reports folder: the checkout's reports/, or
    ~/fer-workbench/reports for an installed package; the test keeps out of both.) Yields the URL."""
    pytest.importorskip("voila", reason="voila is not installed (pip install -e '.[dev]')")
    from fer_workbench.models.registry import run_model_path

    save_tiny_model(run_model_path(tmp_path / "reports"))
    copy = nbformat.read(NOTEBOOK, as_version=4)
    next(c for c in copy.cells if "parameters" in c.metadata.get("tags", [])).source += '\noutput_dir = "reports"\n'
    nbformat.write(copy, tmp_path / NOTEBOOK.name)
    port = free_port()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), TF_CPP_MIN_LOG_LEVEL="2",
               OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    log = tmp_path / "voila.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "voila", NOTEBOOK.name, f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1",
             "--Voila.port_retries=0", "--VoilaConfiguration.show_tracebacks=True"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        # /api/kernelspecs answers at once; the notebook page itself only once its cells have run.
        wait_for_server(process, url + "api/kernelspecs", log, SERVER_START_S, "voila")
        yield url, log
    finally:
        stop_process(process)


def test_upload_a_photo_in_a_real_browser(voila_page, tmp_path):
    chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    url, log = voila_page
    photo = tmp_path / "upload_astronaut.jpg"
    Image.fromarray(skdata.astronaut()).save(photo, quality=92)

    with sync_api.sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path / "chromium-profile", {"width": 1280, "height": 2000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            page.goto(url, timeout=PAGE_LOAD_S * 1000, wait_until="load")
            status, text, box_text = upload_photo(page, photo, PREDICTION_S)
            screenshot = os.environ.get("BROWSER_TEST_SCREENSHOT")
            page.screenshot(path=screenshot or str(tmp_path / "browser_test.png"), full_page=True)
        except BaseException:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"page errors: {json.dumps(errors)}\nvoila log:\n{log_tail(log)}")
            raise
        finally:
            context.close()

    assert "1 photo(s): 1 face(s), 0 with a problem" in status, status
    assert photo.name in box_text, box_text  # the upload's own heading, not folder mode's photos
    match = re.match(r"face 1: (\w+) \((\d+)%\)", text)
    assert match, text
    assert match.group(1) in CLASS_NAMES, text
    assert 0 <= int(match.group(2)) <= 100
