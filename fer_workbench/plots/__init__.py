"""Figure builders: computed results in, a plotly / matplotlib figure out. Nothing here computes statistics
or displays anything; a notebook cell displays the returned figure.

One module per what the figures show: ``dataset`` (the data), ``cleaning``, ``training`` (and tuning, model
comparison), ``evaluation`` (a model's scores), ``saliency``, ``predictions`` (photos, robustness), ``video`` (a
clip's timeline and key frames); ``style`` holds
the split colours and ``use_offline_plotly``. Every figure is importable from here: ``plots.confusion_heatmap(...)``.
"""

from fer_workbench.plots.cleaning import (
    VERDICT_COLORS,
    before_after_bars,
    cleaning_ablation_figure,
    pair_grid,
    score_histogram,
)
from fer_workbench.plots.dataset import (
    class_counts_bar,
    class_sample_grid,
    count_table_heatmap,
    image_grid,
    image_mosaic,
    imbalance_bar,
    intensity_distributions,
    mean_face_panel,
    pixel_histogram,
)
from fer_workbench.plots.evaluation import (
    class_selector_figure,
    confusion_heatmap,
    per_class_bars,
    pr_figure,
    reliability_diagram,
    roc_figure,
    split_metrics_bars,
)
from fer_workbench.plots.predictions import face_scores_bar, perturbation_gallery, photo_with_boxes, robustness_figure
from fer_workbench.plots.saliency import (
    deletion_insertion_plot,
    method_comparison,
    overlay_rgb,
    randomisation_plot,
    region_bars,
    saliency_overlay_grid,
)
from fer_workbench.plots.style import SPLIT_COLORS, use_offline_plotly
from fer_workbench.plots.training import (
    comparison_bars,
    importance_bar,
    label_source_bars,
    learning_curves,
    learning_curves_static,
    probe_figure,
    tuning_parallel_coordinates,
)
from fer_workbench.plots.video import EMOTION_COLORS, video_key_frames, video_timeline

__all__ = ["EMOTION_COLORS", "SPLIT_COLORS", "VERDICT_COLORS", "before_after_bars", "class_counts_bar",
           "class_sample_grid", "class_selector_figure", "cleaning_ablation_figure", "comparison_bars",
           "confusion_heatmap", "count_table_heatmap", "deletion_insertion_plot", "face_scores_bar", "image_grid",
           "image_mosaic", "imbalance_bar", "importance_bar", "intensity_distributions", "label_source_bars",
           "learning_curves", "learning_curves_static", "mean_face_panel", "method_comparison", "overlay_rgb",
           "pair_grid", "per_class_bars", "perturbation_gallery", "photo_with_boxes", "pixel_histogram", "pr_figure",
           "probe_figure", "randomisation_plot", "region_bars", "reliability_diagram", "robustness_figure",
           "roc_figure", "saliency_overlay_grid", "score_histogram", "split_metrics_bars",
           "tuning_parallel_coordinates", "use_offline_plotly", "video_key_frames", "video_timeline"]
