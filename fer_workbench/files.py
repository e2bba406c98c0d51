"""Atomic writes, checksums, bounded reads and output checks: every artefact is written whole or not at all,
no input is read without a size limit, and an output that cannot be written is refused before any work starts."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fer_workbench.errors import WorkbenchError

UMASK = os.umask(0)
os.umask(UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~UMASK)  # mkstemp makes 0600 files; artefacts get the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------ bounded reads


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e8 else f"{n / 1e6:.0f} MB"


def read_bounded(path: str | os.PathLike, max_bytes: int | None, label: str | None = None,
                 error: type[WorkbenchError] = WorkbenchError, hint: str = "") -> bytes:
    """The bytes of a regular file or a pipe, never more than ``max_bytes`` (None: no limit).

    Devices (``/dev/zero``), sockets and directories are refused: their reported size says nothing about what a
    read returns. A regular file over the limit is refused from its size before reading; a pipe (or a file that
    grows while read) is read up to one byte past the limit and then refused. Raises ``error`` (a WorkbenchError
    type) with one line naming ``label`` (default: the path); ``hint`` is appended to the over-the-limit message.
    """
    path = Path(path)
    label = label or str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{label}: no such file") from None
    except OSError as exc:
        raise error(f"{label}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{label}: is a directory, not a file")
    regular = stat.S_ISREG(info.st_mode)
    if not regular and not stat.S_ISFIFO(info.st_mode):
        kind = ("a character device" if stat.S_ISCHR(info.st_mode) else "a block device" if stat.S_ISBLK(info.st_mode)
                else "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
        raise error(f"{label}: {kind}, not a regular file or a pipe: refused")
    if regular and max_bytes is not None and info.st_size > max_bytes:
        raise error(f"{label}: {_megabytes(info.st_size)} is over the {_megabytes(max_bytes)} limit{hint}")
    try:
        with open(path, "rb") as handle:
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except IsADirectoryError:
        raise error(f"{label}: is a directory, not a file") from None
    except OSError as exc:
        raise error(f"{label}: cannot read ({exc.strerror or exc})") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise error(f"{label}: more than {_megabytes(max_bytes)}, over the limit{hint}")
    return data


MAX_SETTINGS_BYTES = 1_000_000  # a settings file (recipe, probes); anything larger is not one


def read_yaml_mapping(path: str | os.PathLike, what: str = "training settings",
                      max_bytes: int = MAX_SETTINGS_BYTES) -> dict:
    """A JSON/YAML settings file (a recipe, a probe list) as a dict; one-line errors naming the file."""
    import yaml

    file = Path(path)
    try:
        text = read_bounded(file, max_bytes).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkbenchError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkbenchError(f"{file}: not valid JSON or YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise WorkbenchError(f"{file}: expected a mapping of {what}")
    return values


# ------------------------------------------------------------------------------------------------ output checks


def _nearest_existing(path: Path) -> Path:
    """``path`` itself when something (even a dangling link) is there, else its nearest existing ancestor."""
    probe = path
    while True:
        try:
            if probe.exists() or probe.is_symlink():
                return probe
        except OSError:  # e.g. a parent that cannot be searched: let the write probe report it
            return probe
        if probe.parent == probe:
            return probe
        probe = probe.parent


def _probe_writable(directory: Path, shown: str) -> None:
    """Create and remove an empty directory in ``directory``: the only test that holds for root, read-only file
    systems and pseudo file systems (/proc) alike."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".fer-workbench-probe-", dir=directory))
    except OSError as exc:
        raise WorkbenchError(f"{shown}: cannot create files in {directory} ({exc.strerror or exc})") from None


def check_output_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Refuse, before any work starts, an output directory that is a file or cannot be created or written.

    Nothing is created: a missing directory is checked by probing its nearest existing ancestor. Returns the path.
    """
    path = Path(path).expanduser()
    _check_dir(path, f"{option} {path}" if option else str(path))
    return path


def _check_dir(path: Path, shown: str, is_target: bool = True) -> None:
    existing = _nearest_existing(path.absolute())
    if not existing.is_dir():
        if is_target and existing == path.absolute():
            raise WorkbenchError(f"{shown}: exists and is not a directory")
        raise WorkbenchError(f"{shown}: cannot be created ({existing} is not a directory)")
    _probe_writable(existing, shown)


def check_output_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """Refuse, before any work starts, an output file that is a directory, or whose folder cannot be written."""
    path = Path(path).expanduser()
    shown = f"{option} {path}" if option else str(path)
    if path.is_dir():
        raise WorkbenchError(f"{shown}: is a directory; give a file name")
    if path.exists() and not path.is_file():
        raise WorkbenchError(f"{shown}: exists and is not a regular file")
    _check_dir(path.absolute().parent, shown, is_target=False)
    return path
