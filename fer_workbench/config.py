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
class DataSettings(Settings):
    """The embedded default dataset."""

    KIND: ClassVar[str] = "data setting"
    # total rows generated (split and class shares follow FER2013)
    synthetic_rows: int


@dataclass(frozen=True)
class DisplaySettings(Settings):
    """What the exploration pages show; changes no result."""

    KIND: ClassVar[str] = "display setting"
    # images shown per class in galleries and sample grids
    gallery_per_class: int
    # rows used by per-image statistics plots (sampled reproducibly when the dataset is larger)
    stats_sample: int


@dataclass(frozen=True)
class TrainSettings(Settings):
    """One training run: what a TrainConfig leaves unset comes from here."""

    KIND: ClassVar[str] = "training setting"
    # batch size on CPU and when a GPU is present, epochs, early-stopping patience (0: off), VGG preset
    batch_size: int
    gpu_batch_size: int
    epochs: int
    early_stopping_patience: int
    vgg_preset: str
    # Training rows one run sees (notebook 03's retrained best, the comparison, the ablations, `train`), drawn
    # reproducibly; 0: all. Smoke caps it so a real FER2013 stays a first look of minutes.
    rows: int = 0
    # recipe: optimizer ("sgd" with Nesterov momentum, "adam", "adamw"), learning rate (None: 0.01 for sgd, 1e-3
    # for adam/adamw) and augmentation strength (0: off)
    optimizer: str = "sgd"
    learning_rate: float | None = None
    augment: float = 1.0


@dataclass(frozen=True)
class TuneSettings(Settings):
    """A Keras Tuner search: everything here, and nothing else in the profile, decides a search's trials."""

    KIND: ClassVar[str] = "tuning setting"
    # trials (random/bayesian), epochs per trial (hyperband: the most), hyperband factor, executions per trial, and
    # the Training/PublicTest rows a search sees (0: all)
    max_trials: int
    max_epochs: int
    hyperband_factor: int
    executions: int
    train_rows: int
    val_rows: int
    # search-space choices that scale with the profile
    batch_sizes: tuple[int, ...]
    base_widths: tuple[int, ...]
    fc_units: tuple[int, ...]
    # the space narrowed: (hyperparameter, values) pairs; Int/Float ones take (min, max), the others the allowed
    # values (one value fixes it). Hyperparameters not named keep the full range.
    space: tuple[tuple[str, tuple], ...] = ()
    # learning-rate schedule of the retrained best configuration (notebook 03, `train --best-of`): it starts from
    # the trial's constant rate under "plateau" (ReduceLROnPlateau), "cosine" (decay to 0) or "constant"
    best_schedule: str = "plateau"
    # per-image input standardisation of every trial's network (as the smoke profile's tiny VGG preset does)
    standardize: bool = False


@dataclass(frozen=True)
class CleanSettings(Settings):
    """Notebook 02 / `clean`: out-of-fold folds, the quick model ("cnn" or "hog-logreg") and its epochs for
    label issues, and the rows (highest cheap non-face scores) the Haar face detector examines."""

    KIND: ClassVar[str] = "cleaning setting"
    label_issue_folds: int = 5
    label_issue_model: str = "cnn"
    label_issue_epochs: int = 5
    nonface_detector_rows: int = 1500
    # The cleaning ablation (`ablate-cleaning`): one network and recipe trained for the same epochs on every
    # variant's Training rows, once per seed. The recipe (TrainConfig fields) replaces the training section's;
    # early stopping is off so every variant gets the same budget. cpu: 7 variants × 3 seeds of the baseline CNN
    # on real FER2013 (3.5M training images at 7 epochs; 520-850 images/s on 2 shared / idle cores) take 1.2-2 h.
    # mini-Xception is not the default: on all 28,709 FER2013 Training rows TensorFlow 2.21 crashes (segfault) in
    # its first epoch on this CPU.
    ablation_model: str = "baseline_cnn"
    ablation_epochs: int = 7
    ablation_seeds: tuple[int, ...] = (0, 1, 2)
    ablation_recipe: tuple[tuple[str, object], ...] = (("optimizer", "adam"), ("learning_rate", 1e-3),
                                                       ("schedule", "cosine"), ("augment", 0.5),
                                                       ("early_stopping_patience", 0))


@dataclass(frozen=True)
class CompareSettings(Settings):
    """Notebook 03's comparison table and ablations."""

    KIND: ClassVar[str] = "comparison setting"
    # the models compared (VGG16 transfer is left out of smoke: ~90 s of 14.8M params)
    models: tuple[str, ...] = ("knn_hog", "svm_hog", "baseline_cnn", "mini_xception", "vgg", "vgg16_transfer")
    # epochs of each Keras model here and in the ablations (0: the training epochs)
    epochs: int = 0
    # Training rows of the classical (kNN / SVM) baselines; SVM cost grows quadratically
    classical_rows: int = 5_000
    # (setting, values) pairs replacing ``comparison.ABLATIONS``' defaults for a setting
    ablation_values: tuple[tuple[str, tuple], ...] = ()


SECTIONS: dict[str, type] = {"data": DataSettings, "display": DisplaySettings, "train": TrainSettings,
                             "tune": TuneSettings, "clean": CleanSettings, "compare": CompareSettings}


@dataclass(frozen=True)
class Profile:
    """Budgets for one scale of work, one section per concern; later stages read their knobs from here, never
    from literals."""

    name: str
    data: DataSettings
    display: DisplaySettings
    train: TrainSettings
    tune: TuneSettings
    clean: CleanSettings = CleanSettings()
    compare: CompareSettings = CompareSettings()

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        data=DataSettings(synthetic_rows=2_000),
        display=DisplaySettings(gallery_per_class=6, stats_sample=2_000),
        # 1,600 Training images: SGD, dropout, label smoothing and full augmentation all hold a network at the
        # majority class for most of a short run, so the recipe is Adam with light augmentation
        train=TrainSettings(batch_size=32, gpu_batch_size=64, epochs=14, early_stopping_patience=0,
                            vgg_preset="tiny", rows=2_000, optimizer="adam", learning_rate=2e-3, augment=0.25),
        # The search, whose best model notebooks 04-05 analyse, keeps the Grad-CAM-faithful shape (batch
        # normalisation and global average pooling straight into the classes; behind flatten, Grad-CAM lights the
        # image borders), and its retrained best decays the rate to 0 (cosine), which steadies a batch-normalised
        # network's last epochs
        tune=TuneSettings(max_trials=2, max_epochs=2, hyperband_factor=2, executions=1, train_rows=1_600,
                          val_rows=400, batch_sizes=(32,), base_widths=(16,), fc_units=(64,),
                          space=(("blocks", (3, 3)), ("convs_per_block", (2, 2)), ("fc_layers", (0, 0)),
                                 ("dropout", (0.0, 0.0)), ("batch_norm", (True,)), ("global_pool", (True,)),
                                 ("optimizer", ("adam", "adamw")), ("learning_rate", (2e-3, 3e-3)),
                                 ("label_smoothing", (0.0, 0.0)), ("augment", (0.25, 0.25))),
                          best_schedule="cosine", standardize=True),
        clean=CleanSettings(label_issue_folds=5, label_issue_model="hog-logreg", nonface_detector_rows=500,
                            ablation_epochs=3, ablation_seeds=(0, 1)),
        # 8 epochs: at 6 the tiny VGG's PrivateTest spread 0.35-0.76 over seeds 0-2, at 8 0.68-0.82. The two classic
        # equalisations are ablated; denoise and edges are left to the cpu and gpu profiles.
        compare=CompareSettings(models=("knn_hog", "svm_hog", "baseline_cnn", "mini_xception", "vgg"), epochs=8,
                                classical_rows=500,
                                ablation_values=(("preprocessing", ("none", "histeq", "clahe")),))),
    "cpu": Profile(
        name="cpu",
        data=DataSettings(synthetic_rows=12_000),
        display=DisplaySettings(gallery_per_class=10, stats_sample=20_000),
        train=TrainSettings(batch_size=64, gpu_batch_size=128, epochs=15, early_stopping_patience=5,
                            vgg_preset="cpu"),
        tune=TuneSettings(max_trials=12, max_epochs=8, hyperband_factor=3, executions=1, train_rows=4_000,
                          val_rows=1_000, batch_sizes=(32, 64), base_widths=(16, 32), fc_units=(256, 1024)),
        clean=CleanSettings(label_issue_folds=5, label_issue_epochs=5, nonface_detector_rows=1500),
        compare=CompareSettings(classical_rows=5_000)),
    "gpu": Profile(
        name="gpu",
        data=DataSettings(synthetic_rows=35_887),
        display=DisplaySettings(gallery_per_class=10, stats_sample=40_000),
        train=TrainSettings(batch_size=64, gpu_batch_size=128, epochs=100, early_stopping_patience=20,
                            vgg_preset="paper"),
        tune=TuneSettings(max_trials=40, max_epochs=30, hyperband_factor=3, executions=1, train_rows=0, val_rows=0,
                          batch_sizes=(64, 128, 256), base_widths=(32, 64), fc_units=(1024, 4096)),
        clean=CleanSettings(label_issue_folds=5, label_issue_epochs=12, nonface_detector_rows=3000),
        compare=CompareSettings(classical_rows=10_000)),
}


def get_profile(name: str | Profile, **sections) -> Profile:
    """The named profile, optionally with fields of some sections overridden, e.g.
    ``get_profile("smoke", tune={"max_trials": 1}, train={"epochs": 2})``."""
    if isinstance(name, Profile):
        profile = name
    else:
        try:
            profile = PROFILES[name]
        except KeyError:
            raise WorkbenchError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None
    changes = {}
    for section, values in sections.items():
        if section not in SECTIONS:
            raise WorkbenchError(f"unknown profile section {section!r}; choose one of {', '.join(SECTIONS)}")
        current = getattr(profile, section)
        changes[section] = type(current).from_dict({**current.to_dict(), **dict(values)})
    return replace(profile, **changes) if changes else profile


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


# the models the package ships, by the name --model / model_path accept ("shipped" is the FER2013 one)
SHIPPED_MODELS: dict[str, str] = {"shipped": "fer2013_model.keras", "shipped-fer2013": "fer2013_model.keras",
                                  "shipped-ferplus": "ferplus_model.keras"}


def shipped_model_path(name: str = "shipped") -> Path:
    """A model the package ships: "shipped" / "shipped-fer2013" (FER2013's seven classes, the default when no
    --model is given) or "shipped-ferplus" (FER+'s eight)."""
    if name not in SHIPPED_MODELS:
        raise WorkbenchError(f"unknown shipped model {name!r}; choose one of {', '.join(SHIPPED_MODELS)}")
    return Path(__file__).resolve().parent / "assets" / SHIPPED_MODELS[name]


def shipped_model_paths() -> list[Path]:
    """Every distinct model file the package ships, FER2013's first (whether or not it is installed)."""
    return list(dict.fromkeys(shipped_model_path(name) for name in SHIPPED_MODELS))


def shipped_name_for(label_source: str) -> str:
    """The shipped model a model trained on ``label_source`` replaces when shipped."""
    return "shipped-ferplus" if label_source.startswith("ferplus") else "shipped"


def model_file(value: str | os.PathLike) -> Path:
    """A --model / model_path value as a file path: a shipped model's name, or the path itself."""
    path = Path(value).expanduser()
    if str(value).startswith("shipped") and not path.exists():
        return shipped_model_path(str(value))
    return path
