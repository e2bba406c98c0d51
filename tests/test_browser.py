"""End to end in a real browser: Voilà serves notebook 06 on loopback, headless Chromium (Debian's, driven by
Playwright) uploads a face photo through the FileUpload widget and the predicted label is read from the page.

Skips (never fails) when Chromium, Playwright or Voilà is missing; `.ci/run` installs Debian's chromium where
it can. Set ``BROWSER_TEST_SCREENSHOT=/some/file.png`` to keep a screenshot of the page after the upload."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import save_tiny_model
from PIL import Image
from skimage import data as skdata

from fer_workbench import CLASS_NAMES
from fer_workbench.config import project_root

NOTEBOOK = project_root() / "notebooks" / "06_predict.ipynb"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SERVER_START_S = 60
PAGE_LOAD_S = 180  # Voilà answers the page once every cell has run (TensorFlow import, folder mode)
PREDICTION_S = 90

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM_PATH") or next(
        (p for p in CHROMIUM_CANDIDATES if Path(p).is_file()), None) or shutil.which("chromium")
    if not found:
        pytest.skip("no Chromium (Debian's chromium package; .ci/run installs it when apt is available)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(process: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"voila exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            # /api/kernelspecs answers at once; the notebook page itself only once its cells have run.
            with urllib.request.urlopen(url + "api/kernelspecs", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # the server answers, even if not that route
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"voila did not answer on {url} within {timeout:.0f} s:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture
def voila_page(tmp_path):
    """Voilà serving a copy of notebook 06 from ``tmp_path``: its default ``output_dir = "reports"`` is
    ``tmp_path/reports``, where a small untrained model waits as the run's best model. Yields the URL."""
    pytest.importorskip("voila", reason="voila is not installed (pip install -e '.[dev]')")
    from fer_workbench.training import run_model_path

    save_tiny_model(run_model_path(tmp_path / "reports"))
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
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
        wait_for_server(process, url, log, SERVER_START_S)
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_upload_a_photo_in_a_real_browser(voila_page, tmp_path):
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    url, log = voila_page
    photo = tmp_path / "upload_astronaut.jpg"
    Image.fromarray(skdata.astronaut()).save(photo, quality=92)

    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS,
                                                 timeout=60_000)
        except sync_api.Error as exc:
            pytest.skip(f"{executable} did not start under Playwright: {str(exc).splitlines()[0]}")
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url, timeout=PAGE_LOAD_S * 1000, wait_until="load")
            # The upload widget's box: the VBox holding the FileUpload button. Its <input type=file> is not always
            # in the DOM, so the upload goes through the file chooser the button opens, as a user's would.
            upload_button = page.locator(".widget-upload")
            upload_button.first.wait_for(timeout=PAGE_LOAD_S * 1000)
            assert upload_button.count() == 1
            box = page.locator(".widget-vbox").filter(has=upload_button).last
            assert "Choose one or more photos." in box.inner_text()

            with page.expect_file_chooser(timeout=30_000) as chooser:
                upload_button.click()
            chooser.value.set_files(str(photo))
            box.get_by_text(re.compile(r"1 photo\(s\): \d+ face\(s\)")).wait_for(timeout=PREDICTION_S * 1000)
            status = box.get_by_text(re.compile(r"photo\(s\):")).inner_text()
            assert "1 photo(s): 1 face(s), 0 with a problem" in status, status
            face_line = box.get_by_text(re.compile(r"^face 1: \w+ \(")).first
            face_line.wait_for(timeout=PREDICTION_S * 1000)
            text = face_line.inner_text()
            box_text = box.inner_text()
            screenshot = os.environ.get("BROWSER_TEST_SCREENSHOT")
            face_line.scroll_into_view_if_needed()
            page.screenshot(path=screenshot or str(tmp_path / "browser_test.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"page errors: {json.dumps(errors)}\nvoila log:\n{log.read_text(errors='replace')[-4000:]}")
            raise
        finally:
            browser.close()

    assert photo.name in box_text, box_text  # the upload's own heading, not folder mode's photos
    match = re.match(r"face 1: (\w+) \((\d+)%\)", text)
    assert match, text
    assert match.group(1) in CLASS_NAMES, text
    assert 0 <= int(match.group(2)) <= 100
