"""Per-image data-quality scores and the cleaning manifest."""
