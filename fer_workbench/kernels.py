"""Which interpreter a Jupyter kernel runs, and the check that a run's kernel is this environment's.

``kernel_name`` ("python3" by default) is resolved with jupyter_client's kernelspec machinery. Inside a virtual
environment jupyter_core prefers the environment's own data directory (``sys.prefix/share/jupyter/kernels``, where
ipykernel installs its spec) over the user's, and that spec's ``argv[0]`` is the bare word ``python``, which
jupyter_client replaces with ``sys.executable``; with no spec at all, jupyter_client falls back to ipykernel's
built-in one (also ``sys.executable``). So "python3" runs the notebooks with the interpreter that runs the pipeline.
:func:`check_kernel` verifies this before a run: when the default "python3" would start a different interpreter the
run refuses with a WorkbenchError rather than silently using another environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fer_workbench.errors import WorkbenchError


def _kernel_spec(kernel_name: str):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        available = ", ".join(sorted(KernelSpecManager().find_kernel_specs())) or "none"
        raise WorkbenchError(f"no Jupyter kernel named {kernel_name!r}; available: {available}") from None


def _spec_python(spec) -> str | None:
    if not spec.argv:
        return None
    command = spec.argv[0]
    # jupyter_client.manager.KernelManager.format_kernel_cmd makes the same substitution
    if command in {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}:
        return sys.executable
    if os.path.isabs(command) and "python" in os.path.basename(command):
        return command
    return None


def kernel_python(kernel_name: str) -> str | None:
    """The interpreter a Jupyter kernel would start, or None for a non-Python / unusual kernelspec.

    Raises WorkbenchError when no kernel of that name exists.
    """
    return _spec_python(_kernel_spec(kernel_name))


def _same_environment(python: str) -> bool:
    # a venv's bin/python is a symlink to the base interpreter: compare the bin directories, unresolved
    return Path(python).absolute().parent == Path(sys.executable).absolute().parent


def check_kernel(kernel_name: str) -> dict:
    """Resolve ``kernel_name`` to ``{"name", "python", "language"}``.

    For the default "python3" insist that it is this environment's python (WorkbenchError otherwise).
    """
    spec = _kernel_spec(kernel_name)
    python = _spec_python(spec)
    if kernel_name == "python3" and python is not None and not _same_environment(python):
        raise WorkbenchError(
            f"Jupyter kernel 'python3' would run {python}, not this environment's {sys.executable}; "
            f"run `{sys.executable} -m ipykernel install --sys-prefix` or choose another kernel")
    return {"name": kernel_name, "python": python, "language": spec.language or None}


__all__ = ["check_kernel", "kernel_python"]
