"""Subcommands that use a trained model: `evaluate` (metrics on a dataset split) and `predict` (faces in photos and
video clips)."""

from __future__ import annotations

import sys

from fer_workbench.cli.common import (
    Owned,
    add_json,
    add_label_source,
    add_owned_choice,
    add_skip_bad_rows,
    check_label_source,
    labelled,
    print_json,
    progress_to_stderr,
)
from fer_workbench.errors import WorkbenchError, one_line

# ------------------------------------------------------------------------------------------ evaluate


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="metrics of a model on a dataset split")
    evaluate.add_argument("--data", required=True, help="FER2013 CSV or image folder")
    evaluate.add_argument("--split", default="PrivateTest",
                          help="split to evaluate (default PrivateTest; a folder without splits uses every image)")
    evaluate.add_argument("--model", help=".keras model file, 'shipped' or 'shipped-ferplus' (default: the best on "
                          "PublicTest of the shipped models whose classes fit --labels, and --run's model)")
    evaluate.add_argument("--run", help="a `fer-workbench run` directory whose notebook-03 model is a candidate")
    evaluate.add_argument("--tta", action="store_true", help="ten-crop + flip test-time augmentation")
    add_label_source(evaluate)
    add_skip_bad_rows(evaluate)
    add_json(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from fer_workbench.data import load_dataset

    check_label_source(args)
    dataset = labelled(args, load_dataset(args.data, skip_bad_rows=args.skip_bad_rows))
    from fer_workbench.evaluation import evaluate_split  # TensorFlow, once the data is known to be good
    from fer_workbench.models.compatibility import check_model
    from fer_workbench.models.registry import choose_model

    choice = choose_model(args.model, args.run, dataset)
    model_path, model = choice.path, choice.load()
    check_model(model, model_path)  # 48×48×1 in, probabilities out; the class count is checked against the data
    # A dataset without the default split (e.g. a folder with only train/) is evaluated on all its images.
    split = None if args.split == "PrivateTest" and args.split not in dataset.split_names() else args.split
    report = evaluate_split(model, dataset, split, tta=args.tta, model_path=model_path)
    report["model_choice"] = choice.to_dict()
    if args.json:
        print_json(report)
        return 0
    print(choice.summary())
    print(f"{report['model']} on {report['data_source']} ({report['split']}, n={report['n']}, "
          f"{report['label_source']} labels, TTA {'on' if args.tta else 'off'})")
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ece"):
        print(f"{key:>18}: {report[key]:.4f}")
    if report["excluded_classes"]:
        print(f"excluded classes (unknown to the model): {', '.join(report['excluded_classes'])}")
    return 0


# ------------------------------------------------------------------------------------------ predict


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}")
    return value


def _seconds(positive: bool):
    def parse(text: str) -> float:
        import argparse
        import math

        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(f"expected a number {'>' if positive else '≥'} 0, got {text!r}")
        return value

    return parse


def _add_predict(commands) -> None:
    predict = commands.add_parser("predict", help="find faces in photos and video clips and predict their expressions",
                                  description="Photos, video clips (mp4, mov, avi, mkv, webm, animated gif, ...) and "
                                              "folders of either, mixed freely. In a clip, faces are tracked: each "
                                              "person keeps one track id while in view.")
    predict.add_argument("inputs", nargs="+", metavar="PHOTO_CLIP_OR_DIR")
    predict.add_argument("--model", help=".keras model file, 'shipped' (FER2013's 7 classes, the default) or "
                                          "'shipped-ferplus' (FER+'s 8, with contempt)")
    add_owned_choice(predict, "--detector", Owned("fer_workbench.faces", "DETECTORS"), default="auto",
                      help="auto: Haar cascade, MTCNN when Haar finds nothing")
    predict.add_argument("--align", action="store_true", help="level the eyes before cropping (needs MTCNN keypoints)")
    predict.add_argument("--tta", action="store_true")
    clips = predict.add_argument_group("video clips")
    sampling = clips.add_mutually_exclusive_group()
    sampling.add_argument("--every", type=_positive_int, default=1, metavar="N",
                          help="analyse every N-th frame (default 1: every frame)")
    sampling.add_argument("--fps", type=_seconds(positive=True), metavar="F",
                          help="analyse about F frames per second of video instead")
    clips.add_argument("--max-frames", type=_positive_int, metavar="M", help="stop a clip after M analysed frames")
    clips.add_argument("--smooth", type=_seconds(positive=False), default=0.0, metavar="SECONDS",
                       help="smooth each track's scores over about this many seconds (default 0: none)")
    predict.add_argument("--csv", metavar="FILE", help="also write one row per face (per frame × face in clips)")
    add_json(predict)
    predict.set_defaults(func=cmd_predict)


def _print_result(result) -> None:
    from fer_workbench.video import VideoPrediction

    if isinstance(result, VideoPrediction):
        if result.readable:
            print(one_line(result.summary()))
        if result.error:
            print(one_line(result.message))
        return
    if result.error and not result.faces:
        print(one_line(result.message))
    for k, face in enumerate(result.faces, 1):
        x, y, w, h = face.box
        print(f"{result.file}: face {k} at x={x} y={y} w={w} h={h}: {face.label} ({face.scores[face.label]:.2f})")


def cmd_predict(args) -> int:
    from fer_workbench.files import check_output_file
    from fer_workbench.predict import FacePredictor
    from fer_workbench.video import predict_files, prediction_rows

    if args.csv:
        check_output_file(args.csv, "--csv")
    with progress_to_stderr(args.json):
        predictor = FacePredictor(args.model, detector=args.detector, tta=args.tta, align=args.align)
        # a clip's progress bar (with an ETA) where someone watches: a terminal, not a log or a pipe
        results = predict_files(predictor, args.inputs, progress=sys.stderr.isatty(), every=args.every, fps=args.fps,
                                max_frames=args.max_frames, smooth=args.smooth)
    if args.csv:
        from fer_workbench.files import atomic_path

        with atomic_path(args.csv) as tmp:
            prediction_rows(results, predictor.class_names).to_csv(tmp, index=False)
    if args.json:
        print_json([r.to_dict() for r in results])
    else:
        for result in results:
            _print_result(result)
    if results and not any(r.readable for r in results):
        raise WorkbenchError("none of the inputs could be read")
    return 0
