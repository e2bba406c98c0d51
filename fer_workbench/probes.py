"""Probes: short controlled trainings of one recipe, each changing one thing (issue 15's "measured choices").

A probe is a name plus TrainConfig overrides applied to a base recipe (a YAML such as configs/fer2013-cpu.yaml).
Every probe trains for the same number of epochs, with the same seed, Training rows and early stopping off, so the
only difference is its overrides; its PublicTest accuracy is the figure probes are chosen on, its PrivateTest
accuracy is reported and never chosen on. ``run_probes`` writes ``probes_results.json`` after every finished
probe, so a killed study restarts where it stopped (a finished probe is not retrained; one interrupted mid-training
resumes from its last epoch through ``training.train``).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fer_workbench.config import Profile, get_profile
from fer_workbench.data.dataset import Dataset
from fer_workbench.errors import WorkbenchError
from fer_workbench.files import atomic_write_text, read_yaml_mapping
from fer_workbench.provenance import read_resumable, run_metadata

RESULTS_FILE = "probes_results.json"  # in the study directory: the study and every finished probe
REPORT_FILE = "probes.json"  # in the report directory (reports/fer2013 for the shipped model)
FIGURE_FILE = "probes.png"
BASELINE = "baseline"  # the probe other probes are compared with, when the study has one
STUDY_SETTINGS = ("epochs", "early_stopping_patience")  # the budget: the same for every probe, no probe changes it
TABLE_COLUMNS = ("probe", "overrides", "publictest_accuracy", "publictest_vs_baseline", "vs_baseline_low",
                 "vs_baseline_high", "privatetest_accuracy", "best_epoch", "kept", "params", "images_per_second",
                 "seconds")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a probe's name is its run directory's name


@dataclass(frozen=True)
class Probe:
    """One candidate change: TrainConfig fields replacing the base recipe's (``model_kwargs`` merge key by key)."""

    name: str
    overrides: dict = field(default_factory=dict)
    description: str = ""


def _as_probe(entry, source: str) -> Probe:
    if isinstance(entry, Probe):
        probe = entry
    elif isinstance(entry, dict):
        unknown = sorted(set(entry) - {"name", "overrides", "description"})
        if unknown:
            raise WorkbenchError(f"{source}: probe {entry.get('name')!r} has unknown key(s) {', '.join(unknown)}; "
                                 "a probe has name, overrides and description")
        probe = Probe(entry.get("name"), entry.get("overrides") or {}, str(entry.get("description") or ""))
    else:
        raise WorkbenchError(f"{source}: a probe is a mapping with name and overrides, got {entry!r}")
    if not isinstance(probe.name, str) or not _NAME.match(probe.name):
        raise WorkbenchError(f"{source}: probe name {probe.name!r} must be letters, digits, '_', '.' or '-' "
                             "(it names the probe's run directory)")
    if not isinstance(probe.overrides, dict):
        raise WorkbenchError(f"{source}: probe {probe.name}: overrides must be a mapping of training settings")
    fixed = sorted(set(probe.overrides) & set(STUDY_SETTINGS))
    if fixed:
        raise WorkbenchError(f"{source}: probe {probe.name} sets {', '.join(fixed)}: every probe trains the same "
                             "budget (give --epochs)")
    return probe


def parse_probes(values: dict | list, source: str = "probes") -> tuple[list[Probe], int | None]:
    """(probes, epochs or None) from a probe file's content: ``{"epochs": N, "probes": [{"name", "overrides",
    "description"}, ...]}`` (``epochs`` optional), or just the list."""
    epochs = None
    if isinstance(values, dict):
        unknown = sorted(set(values) - {"epochs", "probes"})
        if unknown:
            raise WorkbenchError(f"{source}: unknown key(s) {', '.join(unknown)}; a probe file has probes and "
                                 "optionally epochs")
        epochs = values.get("epochs")
        values = values.get("probes")
    if not isinstance(values, list) or not values:
        raise WorkbenchError(f"{source}: expected a non-empty list of probes")
    probes = [_as_probe(entry, source) for entry in values]
    names = [p.name for p in probes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise WorkbenchError(f"{source}: probe name(s) {', '.join(repeated)} used more than once")
    return probes, (None if epochs is None else check_epochs(epochs, f"{source}: epochs"))


def load_probes(path: str | os.PathLike) -> tuple[list[Probe], int | None]:
    """A probe file (YAML/JSON, e.g. configs/fer2013-probes.yaml): (probes, its epochs or None)."""
    return parse_probes(read_yaml_mapping(path, "probes (a 'probes:' list)"), str(path))


def check_epochs(epochs, what: str = "epochs") -> int:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise WorkbenchError(f"{what} must be a whole number of epochs >= 1, got {epochs!r}")
    return epochs


def select_probes(probes: list[Probe], only: list[str] | None) -> list[Probe]:
    """The probes named in ``only`` (all when None), in the file's order; an unknown name is refused."""
    if not only:
        return list(probes)
    known = [p.name for p in probes]
    unknown = [name for name in only if name not in known]
    if unknown:
        raise WorkbenchError(f"unknown probe(s) {', '.join(unknown)}; the probe file has {', '.join(known)}")
    return [p for p in probes if p.name in only]


def probe_config(base: dict, probe: Probe, epochs: int) -> dict:
    """The TrainConfig fields ``probe`` trains with: the base recipe, its overrides (``model_kwargs`` merged key
    by key), the study's epochs and early stopping off."""
    config = {**base, **probe.overrides}
    if isinstance(base.get("model_kwargs"), dict) and isinstance(probe.overrides.get("model_kwargs"), dict):
        config["model_kwargs"] = {**base["model_kwargs"], **probe.overrides["model_kwargs"]}
    return {**config, "epochs": int(epochs), "early_stopping_patience": 0}


# ---------------------------------------------------------------------------------------------------- the study


@dataclass
class ProbeResults:
    """A study's settings (data checksum, base recipe, epochs, seed, profile), its finished probes (one row each,
    in the order asked) and where it lives."""

    study: dict
    rows: list[dict]
    out_dir: Path
    trained_now: list[str] = field(default_factory=list)  # probes fitted in this call (not read back)

    def table(self) -> pd.DataFrame:
        """One row per probe: ``TABLE_COLUMNS`` (overrides as compact JSON; the difference from the baseline on
        PublicTest with its 95 % paired-bootstrap interval over PublicTest images, when a baseline ran)."""
        return probe_table(self.rows)


def probe_table(rows: list[dict]) -> pd.DataFrame:
    """``ProbeResults.table`` from rows (``probes.json``'s ``probes``)."""
    frame = pd.DataFrame([{**row, "overrides": json.dumps(row.get("overrides", {}), sort_keys=True)}
                          for row in rows])
    return frame.reindex(columns=list(TABLE_COLUMNS))


def _read_results(path: Path, study: dict) -> dict[str, dict]:
    saved = read_resumable(path, "study", study, "probe results", f"{path} holds other probes", "use another --out")
    return dict((saved or {}).get("probes", {}))


def _correct_string(correct: np.ndarray) -> str:
    return "".join("1" if c else "0" for c in correct)


def _baseline_comparison(rows: list[dict], n_boot: int = 2000, seed: int = 0) -> None:
    """Each row's PublicTest difference from the baseline probe, paired by image, with its bootstrap interval."""
    from fer_workbench.cleaning.ablation import paired_bootstrap

    base = next((row for row in rows if row["probe"] == BASELINE), None)
    for row in rows:
        row.update({"publictest_vs_baseline": None, "vs_baseline_low": None, "vs_baseline_high": None})
        if base is None or row is base:
            continue
        ours, theirs = (np.frombuffer(r["publictest_correct"].encode("ascii"), np.uint8) == ord("1")
                        for r in (row, base))
        diff, low, high = paired_bootstrap(theirs, ours, n_boot=n_boot, seed=seed)
        row.update({"publictest_vs_baseline": diff, "vs_baseline_low": low, "vs_baseline_high": high})


def run_probes(dataset: Dataset, base_config: dict | str | os.PathLike, probes: list[Probe] | str | os.PathLike,
               out_dir: str | os.PathLike, epochs: int, seed: int = 0, profile: Profile | str = "cpu",
               only: list[str] | None = None, progress: bool = True) -> ProbeResults:
    """Train every probe not already finished in ``out_dir`` (``out_dir``/<probe> is its run) for ``epochs`` with
    ``seed``; ``probes_results.json`` is rewritten (atomically) after each. ``base_config`` is a recipe (TrainConfig
    fields, or a YAML/JSON file of them), ``probes`` a list of ``Probe`` or a probe file. Every probe's config is
    checked before anything trains. Selection figure: the PublicTest accuracy of the model ``training.train``
    keeps (best epoch, or the snapshot average when it scores better); PrivateTest is reported only."""
    from fer_workbench.inference import predict_proba
    from fer_workbench.training import EpochProgress, resolve_config, train  # TensorFlow: once probes are known good

    profile = get_profile(profile)
    base = read_yaml_mapping(base_config) if isinstance(base_config, str | os.PathLike) else dict(base_config)
    if isinstance(probes, str | os.PathLike):
        probes = load_probes(probes)[0]
    probes, _ = parse_probes(list(probes))
    chosen = select_probes(probes, only)
    epochs = check_epochs(epochs)
    configs = {}
    for probe in chosen:
        try:
            configs[probe.name] = resolve_config(probe_config(base, probe, epochs), profile)
        except WorkbenchError as exc:
            raise WorkbenchError(f"probe {probe.name}: {exc}") from None
    study = {"data_checksum": dataset.checksum, "data_source": dataset.source, "label_source": dataset.label_source,
             "base": base, "epochs": epochs, "seed": int(seed), "profile": profile.name,
             "training_rows": profile.train.rows}
    out = Path(out_dir)
    results_path = out / RESULTS_FILE
    finished = _read_results(results_path, study)
    for probe in chosen:
        if probe.name in finished and finished[probe.name]["overrides"] != probe.overrides:
            raise WorkbenchError(f"{results_path}: probe {probe.name} ran with other overrides "
                                 f"({json.dumps(finished[probe.name]['overrides'])}); rename it or use another --out")
    trained_now = []
    public = dataset.split("PublicTest")
    riders = shared_runs(chosen, set(finished))
    riding = {rider.name for rider in riders.values()}  # their rows come with their averaging partner's run
    queue = [p for p in chosen if p.name not in finished and p.name not in riding]
    for probe in tqdm(queue, desc="probes", disable=not progress):
        start = time.perf_counter()
        config = configs[probe.name]
        result = train(dataset, config, out / probe.name, profile=profile, seed=seed, verbose=0,
                       callbacks=[EpochProgress(probe.name)] if progress else None)
        correct = predict_proba(result.model, public.images).argmax(1) == public.labels
        averaging = result.metrics.get("averaging") or {}
        finished[probe.name] = {
            "probe": probe.name, "overrides": probe.overrides, "description": probe.description,
            "publictest_accuracy": result.metrics["PublicTest"]["accuracy"],
            "privatetest_accuracy": (result.metrics.get("PrivateTest") or {}).get("accuracy"),
            "best_epoch": result.metrics["best_epoch"], "kept": averaging.get("kept", "best_epoch"),
            "averaging": averaging or None, "epochs": len(result.history),
            "params": int(result.model.count_params()), "images_per_second": round(result.images_per_second, 1),
            "seconds": round(result.seconds, 1), "probe_seconds": round(time.perf_counter() - start, 1),
            "config": config.to_dict(), "publictest_correct": _correct_string(correct)}
        trained_now.append(probe.name)
        rider = riders.get(probe.name)
        if rider is not None:
            finished[rider.name] = _best_epoch_row(rider, finished[probe.name], configs[rider.name], dataset,
                                                   result.model, out / probe.name)
            trained_now.append(rider.name)
        atomic_write_text(results_path, json.dumps({"study": study, "probes": finished}))
    rows = [dict(finished[p.name]) for p in chosen]
    _baseline_comparison(rows, seed=seed)
    return ProbeResults(study=study, rows=rows, out_dir=out, trained_now=trained_now)


def shared_runs(probes: list[Probe], finished: set[str]) -> dict[str, Probe]:
    """{averaging probe's name: the probe it shares a run with}: a probe whose overrides are another's plus
    ``average_last`` trains exactly as that one does (snapshots only copy weights), so when neither has run, one
    run gives both rows: the averaging probe's from the run, the other's from the run's best epoch
    (checkpoints/best.keras). Saves a probe's training time and makes the comparison exact: same trajectory."""
    pairs = {}
    waiting = [p for p in probes if p.name not in finished]
    for probe in waiting:
        if not probe.overrides.get("average_last"):
            continue
        plain = {k: v for k, v in probe.overrides.items() if k != "average_last"}
        partner = next((p for p in waiting if p.overrides == plain and p.name not in pairs.values()), None)
        if partner is not None:
            pairs[probe.name] = partner
    return pairs


def _best_epoch_row(probe: Probe, averaged_row: dict, config, dataset: Dataset, trained, run_dir: Path) -> dict:
    """``probe``'s row from the best epoch (checkpoints/best.keras) of the run that trained ``averaged_row``'s
    model ``trained`` (its averaging partner's)."""
    from fer_workbench.inference import predict_proba
    from fer_workbench.models.io import float32_copy

    net = float32_copy(trained)  # the checkpoint's weights into the float32 network the run saved
    net.load_weights(run_dir / "checkpoints" / "best.keras")
    scores = {}
    for split in ("PublicTest", "PrivateTest"):
        part = dataset.split(split)
        if len(part):
            scores[split] = predict_proba(net, part.images).argmax(1) == part.labels
    return {**averaged_row, "probe": probe.name, "overrides": probe.overrides, "description": probe.description,
            "publictest_accuracy": float(scores["PublicTest"].mean()),
            "privatetest_accuracy": float(scores["PrivateTest"].mean()) if "PrivateTest" in scores else None,
            "kept": "best_epoch", "averaging": None, "shared_run": averaged_row["probe"], "config": config.to_dict(),
            "publictest_correct": _correct_string(scores["PublicTest"])}


# ------------------------------------------------------------------------------------------------------- report


def report_document(results: ProbeResults, command: str | None = None) -> dict:
    """What ``probes.json`` holds: the study, one row per probe (no per-image data), the probe best on
    PublicTest (the selection), and provenance."""
    rows = [{k: v for k, v in row.items() if k != "publictest_correct"} for row in results.rows]
    best = max(rows, key=lambda row: row["publictest_accuracy"])["probe"] if rows else None
    study = results.study
    return {"study": study, "command": command, "selected_on": "PublicTest", "best_on_publictest": best,
            "probes": rows, "metadata": run_metadata(seed=study["seed"], profile=study["profile"],
                                                     data_checksum=study["data_checksum"])}


def write_probe_report(results: ProbeResults, report_dir: str | os.PathLike, command: str | None = None
                       ) -> dict[str, Path]:
    """Write ``probes.json`` and its figure ``probes.png`` (``plots.probe_figure``) into ``report_dir``,
    each atomically."""
    from fer_workbench.files import atomic_path
    from fer_workbench.plots import probe_figure

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = {"report": report_dir / REPORT_FILE, "figure": report_dir / FIGURE_FILE}
    document = report_document(results, command)
    atomic_write_text(paths["report"], json.dumps(document, indent=1))
    figure = probe_figure(results.table(), f"Probes: {document['study']['epochs']} epochs each, seed "
                                           f"{document['study']['seed']}; selection on PublicTest")
    with atomic_path(paths["figure"]) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return paths


def read_probe_report(path: str | os.PathLike) -> dict:
    """A ``probes.json``; one-line errors for a file that is not one."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{path}: unreadable probe report ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("probes"), list) \
            or "data_checksum" not in document.get("study", {}):
        raise WorkbenchError(f"{path}: not a probe report (no study or probes)")
    return document


def committed_report_path() -> Path | None:
    """``reports/fer2013/probes.json`` of the source checkout (None for an installed package)."""
    from fer_workbench.records import source_checkout

    checkout = source_checkout()
    return None if checkout is None else checkout / "reports" / "fer2013" / REPORT_FILE


def committed_probe_table(dataset: Dataset, path: str | os.PathLike | None = None) -> tuple[pd.DataFrame | None, str]:
    """(the committed probe table, a sentence) when ``path`` (default: the checkout's reports/fer2013/probes.json)
    holds probes of this very data (same checksum); else (None, why not)."""
    path = Path(path) if path is not None else committed_report_path()
    if path is None:
        return None, "no committed probe report: the package is installed, not run from a checkout"
    if not path.is_file():
        return None, f"no committed probe report at {path} (make probes DATA=fer2013.csv.gz writes it)"
    document = read_probe_report(path)
    study = document["study"]
    if study["data_checksum"] != dataset.checksum:
        return None, (f"the committed probes in {path} were run on other data ({study.get('data_source')}, sha256 "
                      f"{study['data_checksum'][:12]}…), not this run's ({dataset.checksum[:12]}…): not shown")
    if study.get("label_source", "fer2013") != dataset.label_source:
        return None, (f"the committed probes in {path} were judged on {study.get('label_source')} labels, this run on "
                      f"{dataset.label_source}: not shown")
    return probe_table(document["probes"]), (
        f"probes of this data from {path}: {study['epochs']} epochs each, seed {study['seed']}, profile "
        f"{study['profile']}; chosen on PublicTest (best: {document['best_on_publictest']}), PrivateTest reported only")


def probe_markdown(document: dict) -> list[str]:
    """Markdown lines: the probe table of a ``probes.json`` document (for the model card)."""
    study = document["study"]
    lines = [f"## Probes: {study['epochs']} epochs each, seed {study['seed']}, selection on PublicTest", "",
             "| probe | overrides | PublicTest | vs baseline [95 % CI] | PrivateTest (reported) | params | images/s |",
             "|---|---|---|---|---|---|---|"]
    for row in document["probes"]:
        diff = row.get("publictest_vs_baseline")
        versus = "" if diff is None else (f"{100 * diff:+.1f} [{100 * row['vs_baseline_low']:+.1f}, "
                                          f"{100 * row['vs_baseline_high']:+.1f}]")
        private = row.get("privatetest_accuracy")
        lines.append(f"| {row['probe']} | `{json.dumps(row.get('overrides', {}), sort_keys=True)}` | "
                     f"{100 * row['publictest_accuracy']:.1f}% | {versus} | "
                     f"{'—' if private is None else f'{100 * private:.1f}%'} | {row['params']:,} | "
                     f"{row['images_per_second']:.0f} |")
    return [*lines, "", "![probes](probes.png)", ""]


__all__ = ["BASELINE", "Probe", "ProbeResults", "committed_probe_table", "load_probes", "parse_probes",
           "probe_config", "probe_markdown", "probe_table", "read_probe_report", "run_probes", "select_probes",
           "write_probe_report"]
