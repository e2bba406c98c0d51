"""Saliency maps and the checks that say whether to trust them.

* ``saliency_maps``: GradCAM, GradCAM++, ScoreCAM, vanilla gradients and SmoothGrad behind one batched call,
  on uint8 images through the model's own preprocessing. Gradients are taken of the class *logit* (the
  softmax is bypassed, as tf-keras-vis' ``ReplaceToLinear`` does) without touching the caller's model.
  GradCAM runs as one traced ``tf.function`` per model (conv activations, gradients, weighting, upsampling
  and normalisation in one graph); the other four methods are tf-keras-vis' own.
* ``randomisation_check``: Adebayo et al. (2018) cascading model-parameter randomisation.
* ``deletion_insertion``: Petsiuk et al. (2018) deletion / insertion curves against a random order.
* ``region_mass`` / ``region_report``: how much of a map falls where the synthetic data planted the signal.
"""

from fer_workbench.saliency.checks import (
    RANDOMISED_RHO_MAX,
    check_verdicts,
    class_mean_maps,
    deletion_insertion,
    example_positions,
    faithfulness_table,
    randomisation_check,
    randomisation_steps,
    randomisation_table,
    region_mass,
    region_report,
)
from fer_workbench.saliency.maps import IMPLEMENTATIONS, METHODS, last_conv_layer, saliency_maps

__all__ = ["IMPLEMENTATIONS", "METHODS", "RANDOMISED_RHO_MAX", "check_verdicts", "class_mean_maps",
           "deletion_insertion", "example_positions", "faithfulness_table", "last_conv_layer", "randomisation_check",
           "randomisation_steps", "randomisation_table", "region_mass", "region_report", "saliency_maps"]
