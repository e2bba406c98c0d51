"""Per-image data-quality scores and the cleaning manifest."""

from fer_workbench.cleaning.manifest import (
    CleaningResult,
    apply_decisions,
    load_decisions,
    read_manifest,
    run_cleaning,
    score_images,
    write_cleaning,
)

__all__ = ["CleaningResult", "apply_decisions", "load_decisions", "read_manifest", "run_cleaning", "score_images",
           "write_cleaning"]
