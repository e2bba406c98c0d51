"""Keras Tuner search over the VGG family and its training recipe; budgets come from the profile.

A search fits on (a subset of) Training and scores on (a subset of) PublicTest; ``best_config`` hands the
winner to ``training.train``. Re-running with the same directory and ``overwrite=False`` resumes the search.
With a ``distributed.Cluster`` the same search runs as one chief and several workers (see ``distributed``).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd

from fer_workbench.config import Profile, get_profile
from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_write_text
from fer_workbench.inputs import make_eval_dataset, make_train_dataset
from fer_workbench.models import VGGConfig, build_model
from fer_workbench.preprocess import check_variant, prepare_images
from fer_workbench.runtime import precision_policy, replica_scaled, select_device, select_strategy
from fer_workbench.training import TrainConfig, compile_model

TUNER_KINDS: tuple[str, ...] = ("hyperband", "bayesian", "random")
OBJECTIVE = "val_accuracy"
SEARCH_FILE = "fer_search.json"


def _narrowing(profile: Profile) -> dict:
    narrow = {name: tuple(values) for name, values in profile.tune.space}
    unknown = sorted(set(narrow) - set(HYPERPARAMETERS))
    if unknown:
        raise WorkbenchError(f"profile {profile.name}: tune.space names unknown hyperparameter(s) "
                             f"{', '.join(unknown)}; known: {', '.join(HYPERPARAMETERS)}")
    return narrow


def search_space(hp: kt.HyperParameters, profile: Profile) -> dict:
    """Declare (or read back) every hyperparameter; returns the values for this trial.

    ``profile.tune.space`` narrows a range or fixes a value (a one-value range becomes ``hp.Fixed``); the
    networks standardise their input when ``profile.tune.standardize`` says so.
    """
    narrow = _narrowing(profile)

    def number(declare, name, low, high, default, **options):
        low, high = narrow.get(name, (low, high))
        if low == high:
            return hp.Fixed(name, low)
        return declare(name, low, high, default=min(max(default, low), high), **options)

    def choice(name, values, default=None):
        values = list(narrow.get(name, values))
        if len(values) == 1:
            return hp.Fixed(name, values[0])
        if set(values) == {False, True}:
            return hp.Boolean(name, default=bool(default))
        return hp.Choice(name, values, default=default if default in values else None)

    return {
        "blocks": number(hp.Int, "blocks", 2, 4, 4),
        "convs_per_block": number(hp.Int, "convs_per_block", 1, 3, 2),
        "base_width": choice("base_width", profile.tune.base_widths),
        "fc_units": choice("fc_units", profile.tune.fc_units),
        "fc_layers": number(hp.Int, "fc_layers", 1, 2, 2),
        "dropout": number(hp.Float, "dropout", 0.0, 0.6, 0.5, step=0.1),
        "batch_norm": choice("batch_norm", (False, True), default=True),
        "global_pool": choice("global_pool", (False, True), default=False),
        "optimizer": choice("optimizer", ("sgd", "adam", "adamw")),
        "learning_rate": number(hp.Float, "learning_rate", 1e-4, 3e-2, 1e-2, sampling="log"),
        "weight_decay": number(hp.Float, "weight_decay", 1e-6, 1e-3, 1e-4, sampling="log"),
        "label_smoothing": number(hp.Float, "label_smoothing", 0.0, 0.2, 0.0, step=0.05),
        "batch_size": choice("batch_size", profile.tune.batch_sizes),
        "augment": number(hp.Float, "augment", 0.0, 1.0, 1.0, step=0.25),
        # Declared last, so adding it left the random draws of the others as they were.
        "standardize": hp.Fixed("standardize", profile.tune.standardize),
    }


HYPERPARAMETERS: tuple[str, ...] = ("blocks", "convs_per_block", "base_width", "fc_units", "fc_layers", "dropout",
                                    "batch_norm", "global_pool", "optimizer", "learning_rate", "weight_decay",
                                    "label_smoothing", "batch_size", "augment")


def _vgg_config(values: dict) -> VGGConfig:
    # Width doubles per block up to 8× the base, as 64→512 in the published network.
    return VGGConfig(blocks=values["blocks"], convs_per_block=values["convs_per_block"],
                     base_width=values["base_width"], max_width=values["base_width"] * 8,
                     fc_units=values["fc_units"], fc_layers=values["fc_layers"],
                     dropout=round(float(values["dropout"]), 4), batch_norm=bool(values["batch_norm"]),
                     global_pool=bool(values["global_pool"]),
                     standardize=bool(values.get("standardize", False))).validate()


def _train_config(values: dict, preprocessing: str = "none", epochs: int | None = None,
                  schedule: str = "constant") -> TrainConfig:
    return TrainConfig(model="vgg", model_kwargs=_vgg_config(values).to_dict(), preprocessing=preprocessing,
                       epochs=epochs, batch_size=int(values["batch_size"]), optimizer=values["optimizer"],
                       learning_rate=float(values["learning_rate"]), weight_decay=float(values["weight_decay"]),
                       schedule=schedule, label_smoothing=round(float(values["label_smoothing"]), 4),
                       augment=round(float(values["augment"]), 4))


class VGGHyperModel(kt.HyperModel):
    """VGG architecture + optimizer, learning rate, weight decay, batch size, label smoothing, augmentation.

    Batch size and learning rate are per replica: with several GPUs (``runtime.select_strategy``) a trial trains
    on batch × replicas at learning rate × replicas (``runtime.replica_scaled``).
    """

    def __init__(self, profile: Profile | str = "smoke", seed: int = 0, preprocessing: str = "none",
                 gpus: list | None = None, strategy=None):
        super().__init__(name="vgg_search", tunable=True)
        self.profile = get_profile(profile)
        self.seed = seed
        self.preprocessing = check_variant(preprocessing)
        self.device = select_device(self.profile, gpus)
        self.strategy = strategy if strategy is not None else select_strategy(gpus)
        self.replicas = self.strategy.num_replicas_in_sync

    def build(self, hp):
        values = search_space(hp, self.profile)
        keras.utils.set_random_seed(self.seed)  # trials differ by their hyperparameters, not their init
        config = _train_config(values, self.preprocessing)
        if self.replicas > 1:
            config = replace(config, learning_rate=replica_scaled(1, config.learning_rate, self.replicas)[1])
        with precision_policy(self.device.mixed_precision):
            model = build_model("vgg", config=config.model_kwargs)
        compile_model(model, config, jit_compile=self.device.jit_compile)
        # Built now so Hyperband's continuation trials restore the optimizer state along with the weights.
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, hp, model, x, y, validation_data=None, epochs=1, initial_epoch=0, callbacks=None,
            verbose="auto", **kwargs):
        """Train with the trial's batch size and augmentation; returns the metrics the oracle records."""
        values = search_space(hp, self.profile)
        batch_size = int(values["batch_size"]) * self.replicas
        train_ds, steps = make_train_dataset(x, y, batch_size, seed=self.seed, epochs=epochs,
                                             initial_epoch=initial_epoch, augment=float(values["augment"]))
        val_x, val_y = validation_data
        start = time.perf_counter()
        history = model.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                            validation_data=make_eval_dataset(val_x, val_y, batch_size), callbacks=callbacks,
                            shuffle=False, verbose=verbose)
        seconds = time.perf_counter() - start
        logs = history.history
        scores = [(-math.inf if v is None or math.isnan(v) else v) for v in logs[OBJECTIVE]]
        best = int(np.argmax(scores))
        metrics = {key: float(vals[best]) for key, vals in logs.items() if vals}
        metrics.update(epochs=float(epochs), seconds=seconds)
        return metrics


def make_tuner(kind: str = "hyperband", directory: str | os.PathLike = "tuning", project_name: str = "vgg",
               profile: Profile | str = "smoke", seed: int = 0, overwrite: bool = False,
               preprocessing: str = "none", gpus: list | None = None, strategy=None, cluster=None) -> kt.Tuner:
    """A Hyperband, Bayesian or random-search tuner maximising PublicTest accuracy with the profile's budgets.

    With ``overwrite=False`` an existing ``directory/project_name`` is reloaded and the search continues.
    ``strategy`` (default ``runtime.select_strategy(gpus)``) runs each trial on several GPUs; ``cluster``
    (a ``distributed.Cluster``) makes this process the chief or a worker of a distributed search.
    """
    profile = get_profile(profile)
    if kind not in TUNER_KINDS:
        raise WorkbenchError(f"unknown tuner {kind!r}; choose one of {', '.join(TUNER_KINDS)}")
    hypermodel = VGGHyperModel(profile, seed=seed, preprocessing=preprocessing, gpus=gpus, strategy=strategy)
    common = {"hypermodel": hypermodel, "objective": kt.Objective(OBJECTIVE, "max"),
              "seed": seed + 1,  # keras-tuner treats seed 0 as "no seed" and draws one at random
              "directory": str(directory), "project_name": project_name, "overwrite": overwrite,
              "executions_per_trial": profile.tune.executions}
    if hypermodel.replicas > 1:
        common["distribution_strategy"] = hypermodel.strategy
    if cluster is not None:
        cluster.activate()  # keras-tuner reads the role from the environment when the tuner is built
        common["overwrite"] = overwrite and cluster.role == "chief"
        common["max_retries_per_trial"] = cluster.max_retries
    if kind == "hyperband":
        tuner = kt.Hyperband(max_epochs=profile.tune.max_epochs, factor=profile.tune.hyperband_factor,
                             hyperband_iterations=1, **common)
    elif kind == "bayesian":
        tuner = kt.BayesianOptimization(max_trials=profile.tune.max_trials, **common)
    else:
        tuner = kt.RandomSearch(max_trials=profile.tune.max_trials, **common)
    project = Path(tuner.project_dir)
    if (cluster is None or cluster.role == "chief") and not common["overwrite"] \
            and not (project / f"{tuner.tuner_id}.json").exists() and (project / "oracle.json").exists():
        # The search was saved under another tuner id (a distributed chief's, or a local run's), so keras-tuner
        # found nothing of this tuner's to reload: resume from the oracle's files (live ones too, for notebooks).
        tuner.oracle.reload()
    if cluster is not None:
        from fer_workbench import distributed

        distributed.attach(tuner, cluster)
    # What it takes to reopen this search by its directory alone (`train --best-of DIR`, notebook 03).
    atomic_write_text(Path(tuner.project_dir) / SEARCH_FILE,
                      json.dumps({"kind": kind, "profile": profile.name, "seed": seed, "preprocessing": preprocessing,
                                  "directory": str(directory), "project_name": project_name}, indent=2))
    return tuner


def open_tuner(project_dir: str | os.PathLike) -> kt.Tuner:
    """Reopen the search in ``project_dir`` (the directory/project_name folder) as it was configured.

    Works on a distributed search too, while its chief is still running (the chief writes its files atomically).
    """
    marker = Path(project_dir) / SEARCH_FILE
    try:
        spec = json.loads(marker.read_text(encoding="utf-8"))
    except OSError:
        raise WorkbenchError(f"{project_dir}: not a search directory made by fer-workbench tune "
                             f"(no {SEARCH_FILE})") from None
    except ValueError:
        raise WorkbenchError(f"{marker}: unreadable search description") from None
    project = Path(project_dir)
    return make_tuner(spec["kind"], directory=project.parent, project_name=project.name,
                      profile=spec["profile"], seed=spec["seed"], preprocessing=spec.get("preprocessing", "none"))


def run_search(tuner: kt.Tuner, dataset: Dataset, profile: Profile | str = "smoke", seed: int = 0,
               verbose="auto", callbacks: list | None = None) -> kt.Tuner:
    """Search on the profile's Training / PublicTest subsets (same rows for every trial and every resume).

    On a distributed chief this serves the oracle until the search is done (see ``distributed.serve``).
    """
    profile = get_profile(profile)
    cluster = getattr(tuner, "fer_cluster", None)
    if cluster is not None:
        from fer_workbench import distributed

        identity = distributed.search_identity(tuner, dataset, profile, seed)
        if cluster.role == "chief":
            distributed.serve(tuner, cluster, identity, verbose=verbose)
            return tuner
        tuner.oracle.identity = identity
    variant = getattr(tuner.hypermodel, "preprocessing", "none")
    train = dataset.split("Training")
    train = train.sample(profile.tune.train_rows, seed)
    val = dataset.split("PublicTest")
    val = val.sample(profile.tune.val_rows, seed)
    tuner.search(prepare_images(train.images, variant), train.labels,
                 validation_data=(prepare_images(val.images, variant), val.labels),
                 epochs=profile.tune.max_epochs, callbacks=list(callbacks or []), verbose=verbose)
    return tuner


def _metric(trial, name):
    return trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None


def results_frame(tuner: kt.Tuner) -> pd.DataFrame:
    """One row per trial: id, status, score, every hyperparameter, epochs trained and seconds.

    A distributed search adds ``worker``: who ran the trial (its last attempt, see ``distributed.trial_assignments``).
    """
    workers = None
    if (Path(tuner.project_dir) / "workers.json").exists():
        from fer_workbench.distributed import trial_workers

        workers = trial_workers(tuner.project_dir)
    rows = []
    for trial_id, trial in tuner.oracle.trials.items():
        hp = dict(trial.hyperparameters.values)
        epochs = _metric(trial, "epochs")
        where = {} if workers is None else {"worker": workers.get(trial_id)}
        rows.append({"trial_id": trial_id, "status": str(trial.status), **where, "score": trial.score, **hp,
                     "epochs": int(epochs) if epochs is not None else hp.get("tuner/epochs"),
                     "seconds": _metric(trial, "seconds")})
    frame = pd.DataFrame(rows)
    if len(frame):
        frame = frame.sort_values("score", ascending=False, na_position="last", kind="stable")
    return frame.reset_index(drop=True)


def best_trials(oracle, top: int = 1) -> list:
    """The ``top`` completed trials, best first; equal scores go to the earlier trial.

    keras-tuner's ``get_best_trials`` breaks ties by the order its trials dict was filled, which differs between
    the chief that ran a search and a tuner reopened from disk, so the two could name different best trials.
    """
    done = [t for t in oracle.trials.values() if t.status == kt.engine.trial.TrialStatus.COMPLETED
            and t.score is not None]
    sign = -1 if oracle.objective.direction == "max" else 1
    return sorted(done, key=lambda t: (sign * t.score, _trial_order(t.trial_id)))[:top]


def _trial_order(trial_id: str) -> tuple:
    return (0, int(trial_id), "") if str(trial_id).isdigit() else (1, 0, str(trial_id))


def best_config(tuner: kt.Tuner, schedule: str | None = None) -> dict:
    """The best trial as TrainConfig fields, for ``training.train(dataset, best_config(tuner), ...)``.

    Trials train at a constant learning rate; the full run starts from it under ``schedule`` (default: the
    search profile's ``tune.best_schedule``).
    """
    best = best_trials(tuner.oracle, 1)
    if not best:
        raise WorkbenchError(f"{Path(tuner.project_dir)}: no completed trials yet; run the search first")
    values = best[0].hyperparameters.values
    variant = getattr(tuner.hypermodel, "preprocessing", "none")
    profile = getattr(tuner.hypermodel, "profile", None)
    schedule = schedule or (profile.tune.best_schedule if profile is not None else "plateau")
    return _train_config(values, variant, schedule=schedule).to_dict()





def hyperparameter_importance(results: pd.DataFrame, seed: int = 0) -> pd.Series:
    """How much each hyperparameter explains the trial scores: random-forest impurity importance on the
    completed trials (categorical values ordinal-coded). Indicative only with a handful of trials."""
    from sklearn.ensemble import RandomForestRegressor

    done = results.dropna(subset=["score"])
    columns = [c for c in done.columns if c not in ("trial_id", "status", "worker", "score", "epochs", "seconds")
               and not c.startswith("tuner/") and done[c].nunique(dropna=False) > 1]
    if len(done) < 2 or not columns:
        return pd.Series(dtype=float, name="importance")
    features = pd.DataFrame({c: done[c] if pd.api.types.is_numeric_dtype(done[c]) and done[c].dtype != bool
                             else pd.factorize(done[c].astype(str))[0] for c in columns})
    forest = RandomForestRegressor(n_estimators=200, random_state=seed).fit(features, done["score"])
    return pd.Series(forest.feature_importances_, index=columns, name="importance").sort_values(ascending=False)


def trial_histories(tuner: kt.Tuner, top: int = 5, metrics=("accuracy", "val_accuracy")) -> pd.DataFrame:
    """Per-epoch metrics of the best ``top`` trials (long format: trial_id, epoch, metric, value)."""
    rows = []
    for trial in best_trials(tuner.oracle, top):
        for metric in metrics:
            if trial.metrics.exists(metric):
                for observation in trial.metrics.get_history(metric):
                    rows.append({"trial_id": trial.trial_id, "epoch": int(observation.step) + 1, "metric": metric,
                                 "value": float(np.mean(observation.value))})
    return pd.DataFrame(rows, columns=["trial_id", "epoch", "metric", "value"])


__all__ = [
    "HYPERPARAMETERS",
    "OBJECTIVE",
    "TUNER_KINDS",
    "VGGHyperModel",
    "best_config",
    "best_trials",
    "hyperparameter_importance",
    "make_tuner",
    "open_tuner",
    "results_frame",
    "run_search",
    "search_space",
    "trial_histories",
]
