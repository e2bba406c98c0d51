"""Import TensorFlow without its start-up noise, keeping the messages that matter.

TensorFlow 2.21 writes its start-up lines (absl's "All log messages before absl::InitializeLog()...", oneDNN,
"Could not find cuda drivers", the CPU-feature notice, and on the first device query "failed call to cuInit:
UNKNOWN ERROR (303)") from C++ straight to file descriptor 2, before ``TF_CPP_MIN_LOG_LEVEL`` takes effect. In a
notebook they become a red stderr block a newcomer reads as a failure; on the CLI they bury the one-line error.

So the first import of TensorFlow in a process that has imported ``fer_workbench`` runs with fd 2 redirected to a
temporary file (together with the first device query, which is where cuInit is called), and every captured line
that is not known start-up noise is written back to ``sys.stderr`` afterwards. ``fer_workbench/__init__.py``
installs :func:`install_import_hook`, so ``import keras`` / ``import tensorflow`` anywhere (package, notebook,
CLI) takes this path; :func:`import_tensorflow` does it explicitly. This module never imports TensorFlow itself
at import time.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator, MutableMapping

# Environment for TensorFlow's C++ logging, set only where the user has not chosen: 2 hides INFO and WARNING
# lines (e.g. "Local rendezvous is aborting ... End of sequence" after every tf.data epoch); errors still show.
LOGGING_ENVIRONMENT: dict[str, str] = {"TF_CPP_MIN_LOG_LEVEL": "2"}

# absl's log prefix: severity letter, MMDD, time, thread id, file:line]
_ABSL_PREFIX = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [\w./-]+:\d+\] ")

# Lines TensorFlow (and the CUDA stubs it loads) print at start-up on every machine; none asks anything of the user.
STARTUP_NOISE: tuple[re.Pattern, ...] = tuple(re.compile(pattern) for pattern in (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"oneDNN custom operations are on",
    r"Could not find cuda drivers on your machine",
    r"failed call to cuInit",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$",
    r"Unable to register (cuDNN|cuFFT|cuBLAS) factory",
    r"computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
    r"successful NUMA node read from SysFS had negative value",
    r"Created device /job:localhost/replica:0/task:0/device:GPU",
))


def configure_environment(environ: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set :data:`LOGGING_ENVIRONMENT`'s variables in ``environ`` (default ``os.environ``) where they are unset.

    Kernels and subprocesses started afterwards inherit them. Returns ``environ``.
    """
    environ = os.environ if environ is None else environ
    for key, value in LOGGING_ENVIRONMENT.items():
        environ.setdefault(key, value)
    return environ


def is_startup_noise(line: str) -> bool:
    """Whether one stderr line is TensorFlow start-up noise (see :data:`STARTUP_NOISE`)."""
    message = _ABSL_PREFIX.sub("", line.strip())
    return any(pattern.search(message) for pattern in STARTUP_NOISE)


def filter_startup_noise(text: str) -> list[str]:
    """The lines of ``text`` that are not start-up noise (blank lines dropped)."""
    return [line for line in text.splitlines() if line.strip() and not is_startup_noise(line)]


@contextlib.contextmanager
def captured_fd2() -> Iterator[list[str]]:
    """Redirect file descriptor 2 (C-level stderr) to a temporary file for the block; afterwards the yielded list
    holds the lines written meanwhile that are not start-up noise, and they are written to ``sys.stderr``."""
    kept: list[str] = []
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile(mode="w+b") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield kept
            finally:
                os.dup2(saved, 2)
                sink.seek(0)
                kept.extend(filter_startup_noise(sink.read().decode("utf-8", errors="replace")))
                for line in kept:
                    print(line, file=sys.stderr)
    finally:
        os.close(saved)


def _initialise_quietly(tensorflow_module) -> None:
    # the first device query loads the CUDA driver stub (cuInit); the context stays uninitialised,
    # so thread and device settings can still be changed afterwards
    with contextlib.suppress(Exception):
        tensorflow_module.config.list_physical_devices()


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of the ``tensorflow`` package with fd 2 captured, then hands the module back to it."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        configure_environment()
        try:
            with captured_fd2():
                self._loader.exec_module(module)
                _initialise_quietly(module)
        finally:
            module.__loader__ = self._loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self._loader

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _TensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and wraps its loader in :class:`_QuietLoader` (once)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        uninstall_import_hook()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _QuietLoader(spec.loader)
        return spec


_FINDER = _TensorFlowFinder()


def install_import_hook() -> None:
    """Make the process's first ``import tensorflow`` (direct or through keras) quiet; a no-op once imported."""
    configure_environment()
    if "tensorflow" not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall_import_hook() -> None:
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_FINDER)


def import_tensorflow():
    """``import tensorflow`` with the start-up noise filtered out (see the module docstring); returns the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    install_import_hook()
    import tensorflow

    return tensorflow


__all__ = ["LOGGING_ENVIRONMENT", "STARTUP_NOISE", "captured_fd2", "configure_environment", "filter_startup_noise",
           "import_tensorflow", "install_import_hook", "is_startup_noise", "uninstall_import_hook"]
