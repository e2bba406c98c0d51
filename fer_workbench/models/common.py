"""Package metadata carried on a Keras model object (never saved in the .keras file; the model card holds it)."""

from __future__ import annotations

import keras


def tag_model(model: keras.Model, **attrs) -> keras.Model:
    """Set ``fer_*`` attributes without Keras' attribute tracking (which would wrap dicts and track callables)."""
    for name, value in attrs.items():
        object.__setattr__(model, name, value)
    return model
