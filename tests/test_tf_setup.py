"""TensorFlow's start-up lines stay out of the CLI's stderr and the notebooks; other stderr lines still show."""

import os
import subprocess
import sys
import textwrap

import pytest

from fer_workbench.tf_setup import filter_startup_noise, is_startup_noise

# What TensorFlow 2.21 printed on this project's CPU-only machine before tf_setup existed (timestamps vary).
OBSERVED_STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796283132.042492    6606 port.cc:153] oneDNN custom operations are on. You may see slightly different \
numerical results due to floating-point round-off errors from different computation orders. To turn them off, set \
the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796283132.042952    6606 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not \
be used.
I0000 00:00:1796283132.198229    6606 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available \
CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX_VNNI FMA, in other operations, \
rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1796283138.580214    6606 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call \
to cuInit: UNKNOWN ERROR (303)
"""


def _env_without_tf_logging() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def test_observed_startup_lines_are_noise_and_others_are_not():
    assert filter_startup_noise(OBSERVED_STARTUP) == []
    kept = ["W0000 00:00:1.5 77 bfc_allocator.cc:380] Allocator ran out of memory trying to allocate 2.0GiB",
            "UserWarning: Do not pass an `input_shape` argument to a layer.",
            "fer-workbench: error: /nonexistent: no such file or directory"]
    assert filter_startup_noise("\n".join(kept)) == kept
    assert not any(is_startup_noise(line) for line in kept)


def test_captured_fd2_drops_noise_and_writes_the_rest_back():
    script = textwrap.dedent("""
        import os
        from fer_workbench.tf_setup import captured_fd2
        with captured_fd2() as kept:
            os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
            os.write(2, b"I0000 00:00:1.2 5 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
                        b"GPU will not be used.\\n")
            os.write(2, b"a C-level warning that matters\\n")
        print("kept:", kept)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120,
                            env=_env_without_tf_logging())
    assert result.returncode == 0, result.stderr
    assert result.stderr == "a C-level warning that matters\n"
    assert "kept: ['a C-level warning that matters']" in result.stdout


@pytest.mark.timeout(300)
def test_importing_tensorflow_through_the_package_is_quiet_and_leaves_it_configurable():
    script = textwrap.dedent("""
        import fer_workbench
        import keras  # imports tensorflow: through the package's hook
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(1)  # the runtime is not initialised yet
        print(type(tf.__spec__.loader).__name__, tf.config.threading.get_intra_op_parallelism_threads())
        print(float(tf.reduce_sum(tf.ones(3))))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=300,
                            env=_env_without_tf_logging())
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    loader, threads = result.stdout.splitlines()[0].split()
    assert loader != "_QuietLoader" and threads == "1"
    assert result.stdout.splitlines()[1] == "3.0"


@pytest.mark.timeout(300)
def test_cli_error_is_one_line_on_stderr():
    """`evaluate` imports TensorFlow before it looks at the data: its start-up lines must not bury the error."""
    result = subprocess.run([sys.executable, "-m", "fer_workbench.cli", "evaluate", "--data", "/nonexistent"],
                            capture_output=True, text=True, check=False, timeout=300, env=_env_without_tf_logging())
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["fer-workbench: error: /nonexistent: no such file or directory"]
