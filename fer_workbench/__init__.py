"""FER Workbench: reproducible facial-expression-recognition analysis on FER2013 and datasets like it."""

from fer_workbench import tf_setup as _tf_setup
from fer_workbench.errors import WorkbenchError

# TensorFlow is imported lazily by the modules that need it; its first import (however it happens) goes through
# tf_setup so that its C++ start-up lines do not reach notebooks or the CLI's stderr.
_tf_setup.install_import_hook()

__version__ = "0.1.0"

# FER2013's label order; every array of class scores in the package follows it.
CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
IMAGE_SIZE = 48

__all__ = ["CLASS_NAMES", "IMAGE_SIZE", "SPLITS", "WorkbenchError", "__version__"]
