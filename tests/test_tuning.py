"""Keras Tuner search: budgets from the profile, results table, resume, and handing the winner to train()."""

import keras
import keras_tuner as kt
import numpy as np
import pytest
from conftest import limit_tf_threads

from fer_workbench import WorkbenchError
from fer_workbench.config import get_profile
from fer_workbench.data.dataset import Dataset
from fer_workbench.training import TrainConfig, resolve_config
from fer_workbench.tuning import best_config, best_trials, make_tuner, results_frame, run_search, search_space

limit_tf_threads()

# Smoke budgets, shrunk further: two one-epoch trials on 120 images.
PROFILE = get_profile("smoke", tune={"max_trials": 2, "max_epochs": 1, "train_rows": 120, "val_rows": 40,
                                     "base_widths": (4,), "fc_units": (16,)})


def toy_dataset(n=200, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n) * 3
    images = rng.integers(0, 60, (n, 48, 48)).astype(np.uint8)
    images[labels == 0, :20] += 150
    images[labels == 3, 28:] += 150
    splits = np.where(np.arange(n) < n * 0.7, "Training", np.where(np.arange(n) < n * 0.85, "PublicTest",
                                                                      "PrivateTest"))
    return Dataset(images, labels, splits, np.arange(n), source="toy")


def test_smoke_search_completes_and_resumes(tmp_path):
    data = toy_dataset()
    tuner = make_tuner("random", tmp_path, "vgg", PROFILE, seed=0)
    run_search(tuner, data, PROFILE, verbose=0)
    frame = results_frame(tuner)
    assert len(frame) == 2 and set(frame["status"]) == {"COMPLETED"}
    assert {"trial_id", "score", "blocks", "base_width", "optimizer", "learning_rate", "batch_size",
            "label_smoothing", "augment", "epochs", "seconds"} <= set(frame.columns)
    assert frame["score"].notna().all() and (frame["seconds"] > 0).all() and (frame["epochs"] == 1).all()
    assert frame["score"].is_monotonic_decreasing

    again = make_tuner("random", tmp_path, "vgg", PROFILE, seed=0)
    run_search(again, data, PROFILE, verbose=0)
    assert sorted(again.oracle.trials) == sorted(tuner.oracle.trials)  # budget spent: nothing new

    more = get_profile(PROFILE, tune={"max_trials": 3})
    extended = make_tuner("random", tmp_path, "vgg", more, seed=0)
    run_search(extended, data, more, verbose=0)
    assert len(extended.oracle.trials) == 3 and set(tuner.oracle.trials) < set(extended.oracle.trials)

    config = best_config(extended)
    best = results_frame(extended).iloc[0]
    assert config["model"] == "vgg" and config["batch_size"] == best["batch_size"]
    assert config["model_kwargs"]["blocks"] == best["blocks"]
    resolved = resolve_config(config, PROFILE)
    assert isinstance(resolved, TrainConfig) and resolved.epochs == PROFILE.train.epochs


def test_tuner_kinds_take_budgets_from_profile(tmp_path):
    hyperband = make_tuner("hyperband", tmp_path, "hb", "cpu", seed=3)
    assert isinstance(hyperband, kt.Hyperband)
    assert hyperband.oracle.max_epochs == get_profile("cpu").tune.max_epochs
    assert hyperband.oracle.factor == get_profile("cpu").tune.hyperband_factor
    bayes = make_tuner("bayesian", tmp_path, "bo", "smoke", seed=3)
    assert bayes.oracle.max_trials == get_profile("smoke").tune.max_trials
    space = {hp.name: hp for hp in bayes.oracle.get_space().space}
    def allowed(name):  # one allowed value is declared fixed
        return list(getattr(space[name], "values", [getattr(space[name], "value", None)]))

    assert allowed("batch_size") == list(get_profile("smoke").tune.batch_sizes)
    assert allowed("base_width") == list(get_profile("smoke").tune.base_widths)
    with pytest.raises(WorkbenchError, match="unknown tuner"):
        make_tuner("grid", tmp_path)
    with pytest.raises(WorkbenchError, match="no completed trials"):
        best_config(bayes)


def test_search_space_defaults_are_the_published_vgg_shape():
    hp = kt.HyperParameters()
    values = search_space(hp, get_profile("gpu"))
    assert (values["blocks"], values["convs_per_block"], values["fc_layers"], values["batch_norm"]) == (4, 2, 2, True)
    assert {"optimizer", "learning_rate", "weight_decay", "batch_size", "label_smoothing", "augment"} <= set(values)


def test_interrupted_search_keeps_finished_trials_and_redoes_the_interrupted_one(tmp_path):
    class StopInSecondTrial(keras.callbacks.Callback):
        trials_begun = 0  # class attribute: keras-tuner deep-copies callbacks per trial

        def on_train_begin(self, logs=None):
            StopInSecondTrial.trials_begun += 1

        def on_train_batch_end(self, batch, logs=None):
            if StopInSecondTrial.trials_begun == 2:
                StopInSecondTrial.trials_begun += 1
                raise KeyboardInterrupt  # what Ctrl-C / a kernel interrupt looks like mid-trial

    data = toy_dataset()
    with pytest.raises(KeyboardInterrupt):
        run_search(make_tuner("random", tmp_path, "vgg", PROFILE, seed=0), data, PROFILE, verbose=0,
                   callbacks=[StopInSecondTrial()])
    resumed = make_tuner("random", tmp_path, "vgg", PROFILE, seed=0)
    before = results_frame(resumed).set_index("trial_id")
    assert sorted(before["status"]) == ["COMPLETED", "RUNNING"]
    run_search(resumed, data, PROFILE, verbose=0)
    after = results_frame(resumed).set_index("trial_id")
    assert sorted(after.index) == sorted(before.index)  # the interrupted trial is finished, not replaced
    assert set(after["status"]) == {"COMPLETED"}
    done = before.index[before["status"] == "COMPLETED"][0]
    assert after.loc[done, "seconds"] == before.loc[done, "seconds"]  # the finished trial was not run again


def test_best_trials_break_ties_by_trial_order_whatever_the_dict_order():
    space = kt.HyperParameters()
    trials = {}
    for trial_id, score, status in (("10", 0.5, "COMPLETED"), ("2", 0.5, "COMPLETED"), ("3", 0.9, "RUNNING"),
                                    ("1", 0.4, "COMPLETED"), ("7", None, "FAILED")):
        trial = kt.engine.trial.Trial(space, trial_id=trial_id, status=status)
        trial.score = score
        trials[trial_id] = trial
    maximise = type("Oracle", (), {"trials": trials, "objective": kt.Objective("val_accuracy", "max")})
    assert [t.trial_id for t in best_trials(maximise, 5)] == ["2", "10", "1"]
    reopened = type("Oracle", (), {"trials": dict(reversed(trials.items())), "objective": maximise.objective})
    assert [t.trial_id for t in best_trials(reopened, 1)] == ["2"]
    minimise = type("Oracle", (), {"trials": trials, "objective": kt.Objective("val_loss", "min")})
    assert [t.trial_id for t in best_trials(minimise, 2)] == ["1", "2"]
