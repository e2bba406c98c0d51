"""Shared pieces of the real-browser tests (Voilà in test_browser.py, JupyterLab in test_jupyterlab.py): find
Debian's Chromium, start a local server on a free loopback port and wait for it, launch Chromium under
Playwright with a fresh profile and no network chatter, and stop what was started."""

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Playwright adds --headless (headless=True) and --user-data-dir (the profile directory it is given).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
BROWSER_START_S = 60


def chromium_path() -> str:
    """Chromium's executable ($CHROMIUM_PATH, else Debian's); skips the test when there is none."""
    found = os.environ.get("CHROMIUM_PATH") or next(
        (p for p in CHROMIUM_CANDIDATES if Path(p).is_file()), None) or shutil.which("chromium")
    if not found:
        pytest.skip("no Chromium (Debian's chromium package; .ci/run installs it when apt is available)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def wait_for_server(process: subprocess.Popen, url: str, log: Path, timeout: float, name: str = "server") -> None:
    """Wait until ``url`` answers (any HTTP status counts); fail with the server's log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # the server answers, even if not that route
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{name} did not answer on {url} within {timeout:.0f} s:\n{log_tail(log)}")


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it is still there after 20 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def launch_chromium(playwright, profile_dir: Path, viewport: dict):
    """A headless Chromium browser context on a fresh profile in ``profile_dir``; skips the test when Chromium
    cannot start under Playwright (e.g. a version Playwright cannot drive)."""
    from playwright.sync_api import Error

    executable = chromium_path()
    try:
        return playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=executable, headless=True, args=CHROMIUM_ARGS, viewport=viewport,
            timeout=BROWSER_START_S * 1000)
    except Error as exc:
        pytest.skip(f"{executable} did not start under Playwright: {str(exc).splitlines()[0]}")


def upload_photo(page, photo: Path, timeout_s: float):
    """Upload ``photo`` through notebook 06's FileUpload widget (via the file chooser its button opens, as a user
    would: its <input type=file> is not always in the DOM) and wait for the first face's line. Returns the upload
    box's status line, that face line ("face 1: happy (87%) · ...") and the box's whole text."""
    import re

    # The photos' upload button (the page also has the video section's clip upload, labelled "upload").
    upload_button = page.locator(".widget-upload").filter(has_text="photos")
    upload_button.first.wait_for(timeout=timeout_s * 1000)
    assert upload_button.count() == 1
    box = page.locator(".widget-vbox").filter(has=upload_button).last
    assert "Choose one or more photos." in box.inner_text()
    upload_button.scroll_into_view_if_needed()
    with page.expect_file_chooser(timeout=30_000) as chooser:
        upload_button.click()
    chooser.value.set_files(str(photo))
    box.get_by_text(re.compile(r"1 photo\(s\): \d+ face\(s\)")).wait_for(timeout=timeout_s * 1000)
    status = box.get_by_text(re.compile(r"photo\(s\):")).inner_text()
    face_line = box.get_by_text(re.compile(r"^face 1: \w+ \(")).first
    face_line.wait_for(timeout=timeout_s * 1000)
    face_line.scroll_into_view_if_needed()
    return status, face_line.inner_text(), box.inner_text()
