"""Profiles (smoke / cpu / gpu), seeds and default paths: the one place budgets live."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import ClassVar

from fer_workbench.errors import WorkbenchError

DEFAULT_SEED = 0


class Settings:
    """Mixin for settings dataclasses: plain-dict round trip that names unknown keys instead of a TypeError."""

    KIND: ClassVar[str] = "setting"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise WorkbenchError(f"unknown {cls.KIND}(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)


@dataclass(frozen=True)
class Profile:
    """Budgets for one scale of work; later stages read their knobs from here, never from literals."""

    name: str
    # embedded default dataset: total rows generated (split and class shares follow FER2013)
    synthetic_rows: int
    # images shown per class in galleries and sample grids
    gallery_per_class: int
    # rows used by per-image statistics plots (sampled reproducibly when the dataset is larger)
    stats_sample: int
    # training: batch size on CPU and when a GPU is present, epochs, early-stopping patience (0: off), VGG preset
    batch_size: int
    gpu_batch_size: int
    epochs: int
    early_stopping_patience: int
    vgg_preset: str
    # Keras Tuner budgets: trials (random/bayesian), epochs per trial (hyperband: the most), hyperband factor,
    # executions per trial, and the Training/PublicTest rows a search sees (0: all)
    tune_max_trials: int
    tune_max_epochs: int
    tune_hyperband_factor: int
    tune_executions: int
    tune_train_rows: int
    tune_val_rows: int
    # search-space choices that scale with the profile
    tune_batch_sizes: tuple[int, ...]
    tune_base_widths: tuple[int, ...]
    tune_fc_units: tuple[int, ...]
    # training rows for the classical (kNN / SVM) baselines; SVM cost grows quadratically
    classical_train_rows: int
    # cleaning: out-of-fold folds, quick model ("cnn" or "hog-logreg") and its epochs for label issues, and the
    # rows (highest cheap non-face scores) the Haar face detector examines
    label_issue_folds: int = 5
    label_issue_model: str = "cnn"
    label_issue_epochs: int = 5
    nonface_detector_rows: int = 1500
    # models in notebook 03's comparison table (VGG16 transfer is left out of smoke: ~90 s of 14.8M params), and
    # the epochs of each Keras model there and in the ablations (0: ``epochs``, the budget of one real training)
    compared_models: tuple[str, ...] = ("knn_hog", "svm_hog", "baseline_cnn", "mini_xception", "vgg",
                                        "vgg16_transfer")
    comparison_epochs: int = 0
    # notebook 03's ablations: (setting, values) pairs replacing ``comparison.ABLATIONS``' defaults for a setting
    ablation_values: tuple[tuple[str, tuple], ...] = ()
    # Training rows one training run sees (notebook 03's retrained best, the comparison, the ablations, `train`),
    # drawn reproducibly; 0: all. Smoke caps it so a real FER2013 stays a first look of minutes.
    train_rows: int = 0
    # training recipe of a TrainConfig that leaves these unset: optimizer ("sgd" with Nesterov momentum, "adam",
    # "adamw"), learning rate (None: 0.01 for sgd, 1e-3 for adam/adamw) and augmentation strength (0: off)
    optimizer: str = "sgd"
    learning_rate: float | None = None
    augment: float = 1.0
    # search space narrowed for this profile: (hyperparameter, values) pairs; Int/Float ones take (min, max),
    # the others the allowed values (one value fixes it). Hyperparameters not named keep the full range.
    tune_space: tuple[tuple[str, tuple], ...] = ()
    # learning-rate schedule of a search's retrained best configuration (notebook 03, `train --best-of`): it starts
    # from the trial's constant rate under "plateau" (ReduceLROnPlateau), "cosine" (decay to 0) or "constant"
    best_schedule: str = "plateau"

    def to_dict(self) -> dict:
        return asdict(self)

    def tune_settings(self) -> dict:
        """The budgets a keras-tuner search depends on (``tune_*``): what every process of one search must share,
        and nothing display- or cleaning-only."""
        return {k: v for k, v in asdict(self).items() if k.startswith("tune_")}


PROFILES: dict[str, Profile] = {
    "smoke": Profile(name="smoke", synthetic_rows=2_000, gallery_per_class=6, stats_sample=2_000,
                     batch_size=32, gpu_batch_size=64, epochs=14, early_stopping_patience=0, vgg_preset="tiny",
                     tune_max_trials=2, tune_max_epochs=2, tune_hyperband_factor=2, tune_executions=1,
                     tune_train_rows=1_600, tune_val_rows=400, tune_batch_sizes=(32,), tune_base_widths=(16,),
                     tune_fc_units=(64,), classical_train_rows=500,
                     label_issue_folds=5, label_issue_model="hog-logreg",
                     nonface_detector_rows=500,
                     compared_models=("knn_hog", "svm_hog", "baseline_cnn", "mini_xception", "vgg"),
                     comparison_epochs=6, train_rows=2_000,
                     # the two classic equalisations; denoise and edges are left to the cpu and gpu profiles
                     ablation_values=(("preprocessing", ("none", "histeq", "clahe")),),
                     # 1,600 Training images: SGD, dropout, label smoothing and full augmentation all hold a network
                     # at the majority class for most of a short run, so the recipe is Adam with light augmentation.
                     # The search, whose best model notebooks 04-05 analyse, keeps the Grad-CAM-faithful shape (batch
                     # normalisation and global average pooling straight into the classes; behind flatten, Grad-CAM
                     # lights the image borders), and its retrained best decays the rate to 0 (cosine), which
                     # steadies a batch-normalised network's last epochs
                     optimizer="adam", learning_rate=2e-3, augment=0.25,
                     tune_space=(("blocks", (3, 3)), ("convs_per_block", (2, 2)), ("fc_layers", (0, 0)),
                                 ("dropout", (0.0, 0.0)), ("batch_norm", (True,)), ("global_pool", (True,)),
                                 ("optimizer", ("adam", "adamw")), ("learning_rate", (2e-3, 3e-3)),
                                 ("label_smoothing", (0.0, 0.0)), ("augment", (0.25, 0.25))),
                     best_schedule="cosine"),
    "cpu": Profile(name="cpu", synthetic_rows=12_000, gallery_per_class=10, stats_sample=20_000,
                   batch_size=64, gpu_batch_size=128, epochs=15, early_stopping_patience=5, vgg_preset="cpu",
                   tune_max_trials=12, tune_max_epochs=8, tune_hyperband_factor=3, tune_executions=1,
                   tune_train_rows=4_000, tune_val_rows=1_000, tune_batch_sizes=(32, 64), tune_base_widths=(16, 32),
                   tune_fc_units=(256, 1024), classical_train_rows=5_000,
                   label_issue_folds=5, label_issue_epochs=5, nonface_detector_rows=1500),
    "gpu": Profile(name="gpu", synthetic_rows=35_887, gallery_per_class=10, stats_sample=40_000,
                   batch_size=64, gpu_batch_size=128, epochs=100, early_stopping_patience=20, vgg_preset="paper",
                   tune_max_trials=40, tune_max_epochs=30, tune_hyperband_factor=3, tune_executions=1,
                   tune_train_rows=0, tune_val_rows=0, tune_batch_sizes=(64, 128, 256), tune_base_widths=(32, 64),
                   tune_fc_units=(1024, 4096), classical_train_rows=10_000,
                   label_issue_folds=5, label_issue_epochs=12, nonface_detector_rows=3000),
}


def get_profile(name: str | Profile, **overrides) -> Profile:
    """The named profile, optionally with some fields overridden."""
    if isinstance(name, Profile):
        profile = name
    else:
        try:
            profile = PROFILES[name]
        except KeyError:
            raise WorkbenchError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None
    return replace(profile, **overrides) if overrides else profile


def workbench_home() -> Path:
    """Where generated data and caches live (override with FER_WORKBENCH_HOME)."""
    return Path(os.environ.get("FER_WORKBENCH_HOME", Path.home() / ".cache" / "fer-workbench"))


def cache_dir() -> Path:
    return workbench_home() / "cache"


def default_data_dir() -> Path:
    return workbench_home() / "default-data"


def project_root() -> Path:
    """The source checkout (where notebooks/ lives)."""
    return Path(__file__).resolve().parent.parent


def notebooks_dir() -> Path:
    """The checkout's notebooks/ (their source); in an installed package, the copy the build put inside it."""
    checkout = project_root() / "notebooks"
    if (project_root() / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return Path(__file__).resolve().parent / "notebooks"


def shipped_model_path() -> Path:
    """The FER2013 model the package ships (used when no --model is given)."""
    return Path(__file__).resolve().parent / "assets" / "fer2013_model.keras"
