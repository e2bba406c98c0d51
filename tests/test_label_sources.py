"""Label sources (fer2013, ferplus-majority, ferplus-soft) on built vote fixtures, models that carry their classes,
and the FER+ votes beside the real FER2013 (skipped when ../shared is absent)."""

import json

import numpy as np
import pytest
from conftest import csv_text, limit_tf_threads, make_rows

from fer_workbench import CLASS_NAMES, WorkbenchError
from fer_workbench.data import load_dataset, load_ferplus
from fer_workbench.data.ferplus import (
    FERPLUS_CLASS_NAMES,
    NO_MAJORITY,
    NOT_AN_EMOTION,
    NOT_IN_FERPLUS,
    VOTE_COLUMNS,
    majority_labels,
    soft_labels,
)
from fer_workbench.data.labels import LABEL_SOURCES, label_source_counts, with_label_source

C = {name: i for i, name in enumerate(FERPLUS_CLASS_NAMES)}


def votes(**counts) -> list[int]:
    """One row of the ten FER+ vote columns; ``NF`` and ``unknown`` by name like the emotions."""
    return [counts.get(column, 0) for column in VOTE_COLUMNS]


# (case, split, FER+ image name, votes, majority label or drop code, soft {class: probability} or drop code)
CASES = [
    ("clear majority, stray votes", "Training", "a.png", votes(happiness=8, surprise=1, unknown=1),
     C["happy"], {"happy": 1.0}),
    ("strays removed make a majority", "Training", "b.png",
     votes(neutral=5, happiness=1, surprise=1, sadness=1, anger=1, disgust=1), C["neutral"], {"neutral": 1.0}),
    ("tie for the top", "Training", "c.png", votes(neutral=4, sadness=4, surprise=2),
     NO_MAJORITY, {"neutral": 0.5, "sad": 0.5}),
    ("contempt majority", "Training", "d.png", votes(neutral=2, contempt=6, NF=2),
     C["contempt"], {"contempt": 0.75, "neutral": 0.25}),
    ("two of three kept, stray dropped", "Training", "e.png", votes(neutral=6, happiness=3, surprise=1),
     C["neutral"], {"neutral": 2 / 3, "happy": 1 / 3}),
    ("too spread: four tie in", "Training", "f.png", votes(neutral=3, happiness=3, surprise=2, sadness=2),
     NO_MAJORITY, NO_MAJORITY),
    ("unknown ties the top emotion", "Training", "g.png", votes(happiness=4, unknown=4, NF=2),
     NO_MAJORITY, NO_MAJORITY),
    ("unknown behind the majority is left out", "Training", "h.png", votes(happiness=6, unknown=2, NF=2),
     C["happy"], {"happy": 1.0}),
    ("unknown majority", "Training", "i.png", votes(happiness=2, unknown=8), NOT_AN_EMOTION, NOT_AN_EMOTION),
    ("not a face", "Training", "j.png", votes(NF=10), NOT_AN_EMOTION, NOT_AN_EMOTION),
    ("not released by FER+", "Training", "", votes(anger=10), NOT_IN_FERPLUS, NOT_IN_FERPLUS),
    ("test tie", "PublicTest", "k.png", votes(neutral=4, sadness=4, surprise=2), NO_MAJORITY, NO_MAJORITY),
    ("test fear", "PublicTest", "l.png", votes(fear=7, surprise=3), C["fear"], {"fear": 1.0}),
    ("test contempt", "PrivateTest", "m.png", votes(contempt=9, NF=1), C["contempt"], {"contempt": 1.0}),
    ("test anger, spread", "PrivateTest", "n.png", votes(anger=6, disgust=3, sadness=1), C["angry"],
     {"angry": 1.0}),
    ("test disgust", "PrivateTest", "o.png", votes(disgust=10), C["disgust"], {"disgust": 1.0}),
]
ROWS = np.array([case[3] for case in CASES])
RELEASED = np.array([case[2] != "" for case in CASES])


def soft_row(expected) -> np.ndarray:
    row = np.zeros(len(FERPLUS_CLASS_NAMES), np.float32)
    for name, p in expected.items():
        row[C[name]] = p
    return row


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_majority_rule(case):
    _, _, name, row, majority, _ = case
    assert majority_labels(np.array([row]), np.array([name != ""]))[0] == majority


@pytest.mark.parametrize("case", [c for c in CASES if c[1] == "Training"], ids=lambda c: c[0])
def test_soft_rule(case):
    _, _, name, row, _, soft = case
    distributions, labels = soft_labels(np.array([row]), np.array([name != ""]))
    if isinstance(soft, dict):
        np.testing.assert_allclose(distributions[0], soft_row(soft), atol=1e-6)
        assert FERPLUS_CLASS_NAMES[labels[0]] == max(soft, key=soft.get)  # ties: the first in FER+ column order
    else:
        assert labels[0] == soft and not distributions[0].any()


def test_soft_tie_takes_the_first_fer_plus_column_as_its_class():
    _, labels = soft_labels(np.array([votes(neutral=4, sadness=4, surprise=2)]))
    assert FERPLUS_CLASS_NAMES[labels[0]] == "neutral"  # FER+ lists neutral before sadness


def test_class_order_keeps_fer2013_indices_and_adds_contempt():
    assert FERPLUS_CLASS_NAMES[:7] == CLASS_NAMES and FERPLUS_CLASS_NAMES[7] == "contempt"
    assert LABEL_SOURCES == ("fer2013", "ferplus-majority", "ferplus-soft")


# ------------------------------------------------------------------------------------- the dataset layer


def write_votes(path, cases, header=True):
    lines = ["Usage,Image name," + ",".join(VOTE_COLUMNS)] if header else []
    lines += [f"{split},{name}," + ",".join(map(str, row)) for _, split, name, row, *_ in cases]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def fixture_files(tmp_path):
    images, labels, _ = make_rows(len(CASES))
    splits = [case[1] for case in CASES]
    data = tmp_path / "fer.csv"
    data.write_text(csv_text(images, labels, splits))
    return data, write_votes(tmp_path / "votes.csv", CASES)


def test_majority_dataset_has_eight_classes_and_drops_rows_without_a_label(fixture_files):
    data, votes_file = fixture_files
    original = load_dataset(data)
    relabelled = with_label_source(original, load_ferplus(votes_file), "ferplus-majority")
    keep = np.array([case[4] >= 0 for case in CASES])
    assert relabelled.class_names == FERPLUS_CLASS_NAMES and relabelled.label_source == "ferplus-majority"
    assert relabelled.row_ids.tolist() == np.flatnonzero(keep).tolist()
    assert relabelled.labels.tolist() == [case[4] for case in CASES if case[4] >= 0]
    assert relabelled.soft_labels is None and relabelled.checksum != original.checksum
    np.testing.assert_array_equal(relabelled.images, original.images[keep])
    assert relabelled.counts().loc["total", "contempt"] == 2
    assert with_label_source(original, None, "fer2013") is original


def test_soft_dataset_uses_distributions_on_training_and_majority_on_tests(fixture_files):
    data, votes_file = fixture_files
    soft = with_label_source(load_dataset(data), votes_file, "ferplus-soft")
    majority = with_label_source(load_dataset(data), votes_file, "ferplus-majority")
    for split in ("PublicTest", "PrivateTest"):  # the same test rows and labels under both FER+ sources
        assert soft.split(split).row_ids.tolist() == majority.split(split).row_ids.tolist()
        assert soft.split(split).labels.tolist() == majority.split(split).labels.tolist()
        np.testing.assert_array_equal(soft.split(split).targets(), majority.split(split).targets())
    expected = {i: case[5] for i, case in enumerate(CASES) if case[1] == "Training" and isinstance(case[5], dict)}
    training = soft.split("Training")
    assert training.row_ids.tolist() == sorted(expected)
    for row_id, target in zip(training.row_ids, training.targets(), strict=True):
        np.testing.assert_allclose(target, soft_row(expected[int(row_id)]), atol=1e-6)
    assert soft.checksum != majority.checksum
    table = label_source_counts(load_dataset(data), votes_file, "ferplus-soft")
    assert table.loc["total", "kept"] == len(soft) and table.loc["total", "rows"] == len(CASES)
    assert table.loc["Training", "dropped: not in FER+"] == 1


@pytest.mark.parametrize("change, message", [
    (lambda cases: [*cases, ("extra", "PrivateTest", "z.png", votes(happiness=10), 0, 0)],
     r"has 17 rows but .*fer\.csv has 16; the votes file must have one row per data row"),
    (lambda cases: cases[:-1], r"has 15 rows but .*fer\.csv has 16"),
    (lambda cases: [(c[0], "PrivateTest" if i == 0 else c[1], *c[2:]) for i, c in enumerate(cases)],
     r"Usage disagrees with .*fer\.csv on 1 rows \(first: data row 0, line 2\); the files are not aligned"),
    (lambda cases: [c if i != 4 else (c[0], c[1], c[2], votes(), *c[4:]) for i, c in enumerate(cases)],
     r"1 rows have no votes at all \(first: data row 4, line 6\)"),
], ids=["more rows", "fewer rows", "usage mismatch", "no votes"])
def test_votes_that_do_not_line_up_are_refused_in_one_line(fixture_files, tmp_path, change, message):
    data, _ = fixture_files
    bad = write_votes(tmp_path / "bad.csv", change(list(CASES)))
    with pytest.raises(WorkbenchError, match=message) as info:
        with_label_source(load_dataset(data), bad, "ferplus-majority")
    assert "\n" not in str(info.value)


def test_unknown_source_and_missing_votes_are_refused(fixture_files):
    data, votes_file = fixture_files
    dataset = load_dataset(data)
    with pytest.raises(WorkbenchError, match=r"unknown label source 'ferplus'; choose one of fer2013, "
                                             r"ferplus-majority, ferplus-soft"):
        with_label_source(dataset, votes_file, "ferplus")
    with pytest.raises(WorkbenchError, match="label source ferplus-soft needs the FER\\+ votes file"):
        with_label_source(dataset, None, "ferplus-soft")
    relabelled = with_label_source(dataset, votes_file, "ferplus-majority")
    with pytest.raises(WorkbenchError, match="FER\\+ labels replace FER2013's"):
        with_label_source(relabelled, votes_file, "ferplus-soft")


def test_soft_labels_travel_with_subsets(fixture_files):
    data, votes_file = fixture_files
    soft = with_label_source(load_dataset(data), votes_file, "ferplus-soft")
    part = soft.subset(np.arange(len(soft)) % 2 == 0)
    np.testing.assert_array_equal(part.soft_labels, soft.soft_labels[::2])
    np.testing.assert_allclose(part.targets().sum(axis=1), 1.0, atol=1e-6)


def test_soft_targets_feed_training_batches(fixture_files):
    from fer_workbench.inputs import make_train_dataset

    data, votes_file = fixture_files
    training = with_label_source(load_dataset(data), votes_file, "ferplus-soft").split("Training")
    x = training.images[..., None].astype(np.float32) / 255
    ds, steps = make_train_dataset(x, training.soft_labels, 64, augment=0, class_names=FERPLUS_CLASS_NAMES)
    _, y = next(iter(ds))
    assert steps == 1 and y.shape == (len(training), 8)
    np.testing.assert_allclose(np.sort(y.numpy(), axis=0), np.sort(training.soft_labels, axis=0), atol=1e-6)


# ------------------------------------------------------------------------------------ models know their classes


def biased_model(n_classes: int, favourite: int):
    """A softmax model that ignores its input and favours one class (zero kernel, biased last layer)."""
    import keras

    limit_tf_threads()
    inputs = keras.Input((48, 48, 1))
    dense = keras.layers.Dense(n_classes, activation="softmax", kernel_initializer="zeros",
                               bias_initializer=keras.initializers.Constant(np.eye(n_classes)[favourite] * 5))
    return keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))


def test_class_list_round_trips_and_the_predictor_reports_contempt(tmp_path):
    from PIL import Image
    from skimage import data as skdata

    from fer_workbench.models.io import load_model, model_class_names, save_model
    from fer_workbench.predict import FacePredictor

    path = save_model(biased_model(8, C["contempt"]), tmp_path / "ferplus.keras",
                      {"class_names": list(FERPLUS_CLASS_NAMES), "preprocessing": "none"})
    assert json.loads(path.with_name("ferplus.model_card.json").read_text())["class_names"] == list(FERPLUS_CLASS_NAMES)
    assert model_class_names(path) == FERPLUS_CLASS_NAMES
    assert model_class_names(load_model(path)) == FERPLUS_CLASS_NAMES
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(skdata.astronaut()).resize((512, 512)).save(photo)
    result = FacePredictor(path, detector="haar").predict_photo(photo)
    assert result.error is None and len(result.faces) == 1
    face = result.faces[0]
    assert face.label == "contempt" and tuple(face.scores) == FERPLUS_CLASS_NAMES
    assert face.to_dict()["label"] == "contempt"


def test_seven_class_models_keep_fer2013_names_and_unnamed_eight_is_refused(tmp_path):
    from fer_workbench.models.compatibility import check_model
    from fer_workbench.models.io import load_model, model_class_names, save_model

    seven = save_model(biased_model(7, 0), tmp_path / "seven.keras")
    assert json.loads(seven.with_name("seven.model_card.json").read_text())["class_names"] == list(CLASS_NAMES)
    assert model_class_names(load_model(seven)) == CLASS_NAMES
    check_model(load_model(seven), seven, num_classes=7)
    with pytest.raises(WorkbenchError, match=r"unnamed\.keras: predicts 8 classes but records no class names"):
        check_model(biased_model(8, 0), "unnamed.keras")
    assert model_class_names(tmp_path / "no_card.keras") == CLASS_NAMES


def test_evaluate_needs_the_model_classes_to_be_the_data_classes(fixture_files, tmp_path):
    from fer_workbench.evaluation import evaluate_split
    from fer_workbench.models.io import load_model, save_model

    data, votes_file = fixture_files
    majority = with_label_source(load_dataset(data), votes_file, "ferplus-majority")
    path = save_model(biased_model(8, C["contempt"]), tmp_path / "m.keras", {"class_names": list(FERPLUS_CLASS_NAMES)})
    report = evaluate_split(load_model(path), majority, "PrivateTest")
    assert report["classes"] == list(FERPLUS_CLASS_NAMES) and report["label_source"] == "ferplus-majority"
    assert report["n"] == 3 and report["accuracy"] == pytest.approx(1 / 3)  # one contempt among three
    renamed = save_model(biased_model(8, 0), tmp_path / "r.keras", {"class_names": [f"c{i}" for i in range(8)]})
    with pytest.raises(WorkbenchError, match=r"r\.keras: predicts c0, .* but .* \(ferplus-majority labels\) has"):
        evaluate_split(load_model(renamed), majority, "PrivateTest", model_path=renamed)
    with pytest.raises(WorkbenchError, match=r"predicts 8 classes but .* has 7"):
        evaluate_split(load_model(path), load_dataset(data), "PrivateTest", model_path=path)


def test_training_on_soft_labels_records_the_classes_in_the_card(fixture_files, tmp_path):
    from fer_workbench.models.io import load_model, model_class_names
    from fer_workbench.training import train

    limit_tf_threads()
    data, votes_file = fixture_files
    soft = with_label_source(load_dataset(data), votes_file, "ferplus-soft")
    tiny = {"blocks": 1, "base_width": 4, "max_width": 4, "fc_units": 8, "fc_layers": 1, "global_pool": True}
    result = train(soft, {"model": "vgg", "model_kwargs": tiny}, tmp_path / "run", "smoke", epochs=1, verbose=0)
    card = json.loads(result.card_path.read_text())
    assert card["class_names"] == list(FERPLUS_CLASS_NAMES) and card["label_source"] == "ferplus-soft"
    assert card["metrics"]["PrivateTest"]["classes"] == list(FERPLUS_CLASS_NAMES)
    assert model_class_names(load_model(result.model_path)) == FERPLUS_CLASS_NAMES
    assert result.model.output_shape[-1] == 8


# ------------------------------------------------------------------------------------------------- the CLI


def test_cli_labels_option(fixture_files, tmp_path, capsys):
    import warnings

    from fer_workbench import cli
    from fer_workbench.models.io import save_model

    data, votes_file = fixture_files
    parser = cli.build_parser()
    for command in (["train", "--out", "o"], ["evaluate", "--data", "d"]):
        assert parser.parse_args(command).labels == "fer2013"
        assert [parser.parse_args([*command, "--labels", s]).labels for s in LABEL_SOURCES] == list(LABEL_SOURCES)
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--labels", "bogus"])
        capsys.readouterr()
    model = save_model(biased_model(8, C["contempt"]), tmp_path / "m.keras", {"class_names": list(FERPLUS_CLASS_NAMES)})
    with warnings.catch_warnings():  # restores the showwarning hook main() installs
        warnings.simplefilter("ignore")
        for command in (["train", "--out", str(tmp_path / "run")], ["evaluate", "--model", str(model)]):
            assert cli.main([*command, "--data", str(data), "--labels", "ferplus-majority"]) == 1
            assert capsys.readouterr().err == ("fer-workbench: error: --labels ferplus-majority needs --ferplus VOTES "
                                               "(the FER+ votes file, fer2013new.csv)\n")
        assert not (tmp_path / "run" / "model.keras").exists()
        assert cli.main(["evaluate", "--data", str(data), "--ferplus", str(votes_file), "--labels",
                         "ferplus-majority", "--model", str(model), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["label_source"] == "ferplus-majority" and report["n"] == 3 and len(report["classes"]) == 8


# ------------------------------------------------------------------------------- comparisons across sources


@pytest.fixture(scope="module")
def synthetic_with_votes(tmp_path_factory):
    """A small synthetic FER2013 and FER+-style votes written from its planted truth."""
    from fer_workbench.data.synthetic import write_synthetic_dataset, write_synthetic_ferplus_votes

    directory = tmp_path_factory.mktemp("synthetic-votes")
    data = write_synthetic_dataset(directory, 600, seed=3)
    return data, write_synthetic_ferplus_votes(data, seed=3)


def test_synthetic_votes_undo_planted_flips_and_drop_planted_nonfaces(synthetic_with_votes):
    from fer_workbench.data.synthetic import load_truth_for

    data, votes_file = synthetic_with_votes
    dataset, truth = load_dataset(data), load_truth_for(data)
    majority = with_label_source(dataset, votes_file, "ferplus-majority")
    kept = np.isin(dataset.row_ids, majority.row_ids)
    assert not kept[truth.nonface[dataset.row_ids]].any()  # "not a face" votes: dropped
    clean = np.asarray(truth.clean_labels)[majority.row_ids]
    assert (majority.labels == clean).mean() > 0.95  # the crowd sees the clean label, flips included
    flipped = np.asarray(truth.label_flipped)[majority.row_ids]
    assert flipped.any() and (majority.labels[flipped] != dataset.subset(kept).labels[flipped]).all()


def test_cross_table_scores_each_model_on_each_label_source_over_shared_classes(synthetic_with_votes, tmp_path):
    from fer_workbench.models.io import save_model
    from fer_workbench.results import label_source_cross_table, label_source_cross_view

    data, votes_file = synthetic_with_votes
    dataset = load_dataset(data)
    happy7 = save_model(biased_model(7, CLASS_NAMES.index("happy")), tmp_path / "happy7.keras")
    contempt8 = save_model(biased_model(8, C["contempt"]), tmp_path / "contempt8.keras",
                           {"class_names": list(FERPLUS_CLASS_NAMES)})
    table = label_source_cross_table({"happy7": happy7, "contempt8": contempt8}, dataset, votes_file)
    assert len(table) == 2 * 2 * 2  # models × label sources × splits
    row = table.set_index(["model", "labels", "split"])
    majority = with_label_source(dataset, votes_file, "ferplus-majority").split("PrivateTest")
    fer2013 = dataset.split("PrivateTest")
    happy = CLASS_NAMES.index("happy")
    assert row.loc[("happy7", "fer2013", "PrivateTest"), "accuracy"] == pytest.approx((fer2013.labels == happy).mean())
    assert row.loc[("happy7", "ferplus-majority", "PrivateTest"), "n"] == (majority.labels != C["contempt"]).sum()
    # the FER+ model's contempt answer is set aside on FER2013's labels: its runner-up (class 0, angry) counts
    assert row.loc[("contempt8", "fer2013", "PrivateTest"), "classes"] == 7
    assert row.loc[("contempt8", "fer2013", "PrivateTest"), "accuracy"] == pytest.approx((fer2013.labels == 0).mean())
    assert row.loc[("contempt8", "ferplus-majority", "PrivateTest"), "n"] == len(majority)
    view = label_source_cross_view(table)  # what notebook 05 shows: a row per model, counts kept whole
    assert list(view.index) == ["happy7", "contempt8"] and view[("n", "ferplus-majority", "PrivateTest")].dtype == int
    assert view.loc["contempt8", ("n", "ferplus-majority", "PrivateTest")] == len(majority)


def test_label_source_comparison_trains_one_network_per_source(synthetic_with_votes, tmp_path):
    from fer_workbench.comparison import label_source_comparison
    from fer_workbench.config import get_profile

    limit_tf_threads()
    data, votes_file = synthetic_with_votes
    profile = get_profile("smoke", compare={"epochs": 1}, train={"rows": 200})
    table = label_source_comparison(load_dataset(data), votes_file, tmp_path, profile=profile, progress=False)
    assert list(table["labels"]) == list(LABEL_SOURCES)
    assert list(table["classes"]) == [7, 8, 8]
    assert (table["PrivateTest n"].iloc[1:] <= table["PrivateTest n"].iloc[0]).all()  # FER+ may drop rows
    assert table["shared n"].nunique() == 1  # one common ground for every source
    assert (table["train_rows"] == 200).all()  # the rows each network fitted: the profile's subsample
    scores = table[["PublicTest accuracy", "PrivateTest accuracy", "PrivateTest FER+ majority, shared classes"]]
    assert ((scores >= 0) & (scores <= 1)).all().all()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"labels={s}" for s in sorted(LABEL_SOURCES)]


def test_model_choice_leaves_out_models_of_other_classes(synthetic_with_votes, tmp_path, monkeypatch):
    from fer_workbench import config
    from fer_workbench.models.io import save_model
    from fer_workbench.models.registry import choose_model

    data, votes_file = synthetic_with_votes
    shipped = {"shipped": tmp_path / "a" / "fer2013_model.keras", "shipped-ferplus": tmp_path / "a" / "ferplus.keras"}
    shipped["shipped-fer2013"] = shipped["shipped"]
    save_model(biased_model(7, 3), shipped["shipped"])
    save_model(biased_model(8, 6), shipped["shipped-ferplus"], {"class_names": list(FERPLUS_CLASS_NAMES)})
    monkeypatch.setattr(config, "shipped_model_path", lambda name="shipped": shipped[name])
    majority = with_label_source(load_dataset(data), votes_file, "ferplus-majority")
    choice = choose_model(None, tmp_path / "run", majority)
    assert choice.path == shipped["shipped-ferplus"]
    left_out = [c for c in choice.candidates if not c.compatible]
    assert [c.path for c in left_out] == [shipped["shipped"]] and "8" in left_out[0].reason
    assert set(choice.every_model().values()) == {shipped["shipped"], shipped["shipped-ferplus"]}
    assert choose_model("shipped-ferplus", None, majority).path == shipped["shipped-ferplus"]


def test_shipped_model_names():
    from fer_workbench.config import model_file, shipped_model_path

    assert model_file("shipped") == shipped_model_path() == shipped_model_path("shipped-fer2013")
    assert model_file("shipped-ferplus").name == "ferplus_model.keras"
    with pytest.raises(WorkbenchError, match="unknown shipped model 'shipped-affectnet'"):
        model_file("shipped-affectnet")


def test_run_refuses_a_ferplus_label_source_without_votes(capsys):
    import warnings

    from fer_workbench import cli

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(["run", "--labels", "ferplus-soft", "--out", "unused"]) == 1
    assert capsys.readouterr().err == ("fer-workbench: error: --labels ferplus-soft needs --ferplus VOTES "
                                       "(the FER+ votes file, fer2013new.csv)\n")


# ------------------------------------------------------------------------------------------ the real votes


@pytest.mark.real_data
def test_real_ferplus_label_sources(real_csv, real_ferplus):
    """FER+ keeps most of FER2013's 35,887 images: it drops the 173 it never released, and under the majority rule
    the rows with no strict majority (ties included) or an unknown / not-a-face answer."""
    dataset, ferplus = load_dataset(real_csv), load_ferplus(real_ferplus)
    majority = label_source_counts(dataset, ferplus, "ferplus-majority")
    soft = label_source_counts(dataset, ferplus, "ferplus-soft")
    print("\nferplus-majority\n" + majority.to_string() + "\nferplus-soft\n" + soft.to_string())
    assert majority.loc["total", "rows"] == 35_887 and majority.loc["total", "dropped: not in FER+"] == 173
    assert 0.85 < majority.loc["total", "kept"] / 35_887 < 0.9  # 31,412 kept
    for split in ("Training", "PublicTest", "PrivateTest"):
        assert majority.loc[split, "kept"] / majority.loc[split, "rows"] > 0.85
        assert soft.loc[split, "kept"] >= majority.loc[split, "kept"]
    for split in ("PublicTest", "PrivateTest"):  # both FER+ sources judge on the same test rows
        assert soft.loc[split].to_dict() == majority.loc[split].to_dict()
    relabelled = with_label_source(dataset, ferplus, "ferplus-majority")
    counts = relabelled.counts()
    assert len(relabelled) == majority.loc["total", "kept"] and counts.loc["total", "contempt"] > 100
    assert counts.loc["PrivateTest", "total"] == majority.loc["PrivateTest", "kept"]
    # Neutral and happiness are FER+'s largest classes, disgust and contempt its smallest.
    totals = counts.loc["total", list(FERPLUS_CLASS_NAMES)].sort_values()
    assert set(totals.index[-2:]) == {"neutral", "happy"} and set(totals.index[:2]) == {"disgust", "contempt"}
