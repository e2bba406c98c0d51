"""FER Workbench: reproducible facial-expression-recognition analysis on FER2013 and datasets like it."""

from fer_workbench.errors import WorkbenchError

__version__ = "0.1.0"

# FER2013's label order; every array of class scores in the package follows it.
CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
IMAGE_SIZE = 48

__all__ = ["CLASS_NAMES", "IMAGE_SIZE", "SPLITS", "WorkbenchError", "__version__"]
