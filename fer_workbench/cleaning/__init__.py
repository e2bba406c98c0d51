"""Per-image data-quality scores and the cleaning manifest."""

from fer_workbench.cleaning.pipeline import CleaningResult, load_decisions, read_manifest, run_cleaning

__all__ = ["CleaningResult", "load_decisions", "read_manifest", "run_cleaning"]
