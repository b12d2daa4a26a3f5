"""The `autotune` command line."""
from __future__ import annotations

import argparse
import dataclasses
import re
import signal
import sys
from pathlib import Path

from autotune.errors import AutotuneError, ConfigError
from device_runners.runners import RUNNERS
from device_runners.targets import TARGETS


def _run(args: argparse.Namespace) -> int:
    from autotune.config import folder_problem, load_experiment
    from autotune.study import run_search

    experiment = load_experiment(args.experiment)
    changes = {}
    if args.trials is not None:
        changes["budget"] = dataclasses.replace(experiment.budget, trials=args.trials)
    if args.output_dir is not None:
        problem = folder_problem(Path(args.output_dir))
        if problem:
            raise ConfigError(f"--output-dir {args.output_dir}: {problem}")
        changes["output_dir"] = Path(args.output_dir)
    experiment = dataclasses.replace(experiment, **changes)
    summary = run_search(experiment, workers=args.workers, ray_address=args.ray_address,
                         progress=not args.no_progress, warm_start=Path(args.warm_start) if args.warm_start else None)
    print(f"{experiment.name}: {summary.finished}/{experiment.budget.trials} trials finished "
          f"({summary.new} in this run), {summary.feasible} feasible, front of {summary.front}, "
          f"hypervolume {summary.hypervolume:.4f}; {summary.rejected} candidates rejected over a hard "
          f"limit before training")
    if summary.exhausted:
        print("stopped early: the last draws were all duplicates or over the limits; widen model.space or "
              "the constraints", file=sys.stderr)
    if summary.best is not None:
        _print_best(summary.best)
    print(f"outputs in {experiment.run_dir}/: dashboard.html, trials.csv, pareto.json, pareto/")
    if summary.interrupted:
        print(f"interrupted ({signal.Signals(summary.interrupted).name}): completed trials are saved; "
              "run the same command to continue", file=sys.stderr)
        return 128 + summary.interrupted
    return 0


def _print_best(best) -> None:
    from autotune.data import SMALL_TEST
    from autotune.report.dashboard import accuracy_text

    m = best.metrics
    print(f"best front point: trial {best.number}, validation accuracy {accuracy_text(m, 'accuracy')}, "
          f"test accuracy {accuracy_text(m, 'test_accuracy')}")
    if m["test_accuracy_n"] < SMALL_TEST:
        print(f"warning: only {m['test_accuracy_n']} test examples: the test accuracy is a rough guide "
              f"(give a larger test split: x_test/y_test in the npz, data.test_path for csv)", file=sys.stderr)


def _report(args: argparse.Namespace) -> int:
    from autotune.compress.report import format_rows, rows_from_json, table_note
    from autotune.report.dashboard import comparison_html, run_label
    from autotune.report.outputs import read_exports, write_outputs
    from autotune.report.records import read_records, reference_point
    from autotune.study import open_study

    experiments = [load_run(Path(run)) for run in args.run]  # every folder checked before anything is written
    runs = []
    for experiment in experiments:
        study = open_study(experiment)
        front = write_outputs(experiment, study, png=args.png)
        runs.append((read_records(study), experiment))
        print(f"{experiment.run_dir}: front of {len(front)}; wrote dashboard.html, trials.csv, pareto.json, pareto/"
              + (", plots/*.png" if args.png else ""))
        for e in read_exports(experiment.run_dir):  # the exported points' weight storage, as in the dashboard
            if e.get("weights"):
                rows = rows_from_json(e["weights"])
                print(f"\ntrial {e['trial']} ({e['bundle']}): weight storage by layer", *format_rows(rows),
                      table_note(rows), sep="\n")
    if len(runs) > 1:
        out = Path(args.out)
        out.write_text(comparison_html(runs))
        print(f"{out}: hypervolume over trials and over time of " + ", ".join(run_label(e) for _, e in runs))
        if len({(tuple(e.objectives), tuple(reference_point(e).items())) for e in experiments}) > 1:
            print("warning: the runs have different limits or objectives; their hypervolumes do not compare",
                  file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from autotune.export import choose_trial, export_trial
    from autotune.report.outputs import record_export, write_dashboard
    from autotune.study import open_study

    experiment = load_run(Path(args.run))
    record = choose_trial(experiment, args.trial, args.pick)
    out = Path(args.out) if args.out else experiment.run_dir / "bundles" / f"trial_{record.number}"
    bundle = export_trial(experiment, record, out, vectors=args.vectors, target=args.target)
    record_export(experiment.run_dir, record.number, bundle)
    write_dashboard(experiment, open_study(experiment))  # with the exported points' tables
    _print_bundle(bundle, f"trial {record.number} (validation accuracy {record.metrics['accuracy']:.3f}, "
                          f"test accuracy {record.metrics['test_accuracy']:.3f})")
    return 0


def _import(args: argparse.Namespace) -> int:
    from autotune.export import StorageLimits, import_model

    model = Path(args.model)
    default = re.sub(r"[^A-Za-z0-9._-]", "_", model.stem).lstrip(".-") or "model"  # the stem is anything at all
    out = Path(args.out) if args.out else Path("bundles") / default
    if args.inputs_key and not args.inputs:
        raise ConfigError("--inputs-key: needs --inputs ARCHIVE.npz")
    limits = [f for f in ("max_latency_increase", "max_ram_increase") if getattr(args, f) is not None]
    if limits and not args.compress:
        raise ConfigError(f"--{limits[0].replace('_', '-')}: applies with --compress")
    compress = StorageLimits(max_latency_increase_pct=5.0 if args.max_latency_increase is None
                             else args.max_latency_increase,
                             max_ram_increase_bytes=100 if args.max_ram_increase is None
                             else args.max_ram_increase) if args.compress else None
    bundle = import_model(model, out, Path(args.inputs) if args.inputs else None, vectors=args.vectors,
                          inputs_key=args.inputs_key, compress=compress, on_front=_print_front)
    _print_bundle(bundle, str(model))
    return 0


def _print_front(graph, points, chosen, unfit) -> None:
    print(f"storage of the weight tensors, each built for {chosen.flash_source.split('-', 1)[1]} "
          f"(flash and RAM {chosen.flash_source}, latency {chosen.latency_source}); * on the front, > chosen:")
    for p in points:
        mark = (">" if p is chosen else " ") + ("*" if p.on_front else " ")
        print(f"  {mark} flash {p.flash_bytes} B, RAM {p.ram_bytes} B, latency {p.latency_ms:.3f} ms: {p.how} "
              f"({p.storages(graph)})")
    for how, why in unfit:
        print(f"     {how}: {why}")


def _profile(args: argparse.Namespace) -> int:
    from autotune.profile import format_profile, profile_bundle, write_csv

    bundle = Path(args.bundle)
    profile = profile_bundle(bundle, args.target, port=args.port, vectors=args.vectors)
    out = bundle / f"profile_{args.target}.csv"
    write_csv(profile.calls, out)
    print(format_profile(profile))
    print(f"per-call table in {out}")
    return 0


def _print_bundle(bundle, what: str) -> None:
    print(f"{what} -> {bundle.path}/")
    for target, b in bundle.builds.items():
        print(f"  {target}: flash {b.flash_bytes} B, RAM {b.ram_bytes} B (stack {b.stack_bytes} B), measured from the ELF")
    for target, why in bundle.unfit.items():
        print(f"  {target}: no firmware, the model does not fit: {why} (the linker's count)")
    print(f"  make -C {bundle.path} host     # build and run the test vectors")
    for target, b in bundle.builds.items():
        if b.uf2_path:
            print(f"  {b.uf2_path}: copy to the {target} board in BOOTSEL mode; then "
                  f"autotune profile {bundle.path} --target {target} --port PORT")


def load_run(run: Path):
    """The experiment of an existing run folder, pointing at that folder (autotune.study.load_run)."""
    from autotune.study import load_run as load

    return load(run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autotune", description="Design-space search and autotuner "
                                     "for TinyML on microcontrollers.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="search: train, quantize and cost candidates; resumable")
    run.add_argument("experiment", help="experiment YAML, e.g. experiments/spectral.yaml")
    run.add_argument("--trials", type=int, help="trial budget (overrides budget.trials)")
    run.add_argument("--workers", type=int, help="trials at once on Ray (overrides workers; 1 needs no Ray)")
    run.add_argument("--ray-address", help="join an existing Ray cluster, e.g. 10.0.0.5:6379 or auto")
    run.add_argument("--output-dir", help="parent of the run folder (overrides output_dir; default runs)")
    run.add_argument("--warm-start", metavar="RUN", help="a previous run folder of the same model family: its "
                     "front is tried first (and its other feasible trials when the data or target changed)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)

    report = sub.add_parser("report", help="regenerate dashboard.html, trials.csv, pareto.json from a run")
    report.add_argument("run", nargs="+", help="run folder, e.g. runs/spectral; several: also a comparison")
    report.add_argument("--png", action="store_true", help="also write each plot as RUN/plots/<name>.png")
    report.add_argument("--out", default="comparison.html",
                        help="the comparison of several runs (default comparison.html)")
    report.set_defaults(func=_report)

    export = sub.add_parser("export", help="a firmware bundle (C, Makefile, test vectors, reports) for one trial")
    export.add_argument("run", help="run folder, e.g. runs/spectral")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, help="trial number")
    which.add_argument("--pick", help="'knee' (default), or e.g. 'max accuracy where flash<64KB and latency<5ms'")
    export.add_argument("--target", choices=tuple(TARGETS),
                        help="target the card's costs are measured for (default: the run's)")
    export.add_argument("--out", help="bundle folder (default RUN/bundles/trial_N)")
    export.add_argument("--vectors", type=int, default=20, help="test vectors from the test set (default 20)")
    export.set_defaults(func=_export)

    imp = sub.add_parser("import", help="bring your own int8 .tflite: IR, checks, C bundle, measured builds")
    imp.add_argument("model", help="an int8 .tflite file")
    imp.add_argument("--out", help="bundle folder (default bundles/<model name>)")
    imp.add_argument("--inputs", help="test inputs: a .npy array or an .npz archive, one row per input; int8 "
                     "is taken as quantized, other numbers as real values (default: random int8)")
    imp.add_argument("--inputs-key", help="the array of the .npz to use (default: x, or its only array)")
    imp.add_argument("--vectors", type=int, help="number of test vectors (default: every row of --inputs, else 20)")
    imp.add_argument("--compress", action="store_true", help="choose each weight tensor's storage in flash "
                     "(lossless: the outputs stay identical) from the measured flash/RAM/latency front")
    imp.add_argument("--max-latency-increase", type=float, metavar="PCT",
                     help="with --compress: the chosen storage's latency at most this %% above the plain "
                     "arrays' (default 5)")
    imp.add_argument("--max-ram-increase", type=int, metavar="BYTES",
                     help="with --compress: its RAM at most this many bytes above the plain arrays' (default 100)")
    imp.set_defaults(func=_import)

    prof = sub.add_parser("profile", help="run a bundle's test vectors on a simulator or a board: cycles per kernel call")
    prof.add_argument("bundle", help="a bundle folder (from export or import)")
    prof.add_argument("--target", required=True, choices=tuple(RUNNERS),
                      help="runner: a simulator, or rp2040 for a board on --port")
    prof.add_argument("--port", help="serial port of the board (rp2040), e.g. /dev/ttyACM0")
    prof.add_argument("--vectors", type=int, help="run only the first N test vectors")
    prof.set_defaults(func=_profile)
    return parser


def printable(text: str) -> str:
    """One line of printable text: a newline or control character (in a file name, say) is
    shown escaped, so an error is always exactly one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _Terminated(KeyboardInterrupt):
    """SIGTERM outside the search (which handles it itself): stop as Ctrl-C would."""


def _terminate(signum, frame) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for flag in ("trials", "workers", "vectors"):
        if getattr(args, flag, None) is not None and getattr(args, flag) < 1:
            print(f"autotune: error: --{flag} must be >= 1", file=sys.stderr)
            return 2
    for flag in ("max_latency_increase", "max_ram_increase"):
        value = getattr(args, flag, None)
        if value is not None and not 0 <= value < float("inf"):
            print(f"autotune: error: --{flag.replace('_', '-')} must be a number >= 0", file=sys.stderr)
            return 2
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except AutotuneError as exc:
        print(f"autotune: error: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT
        print(f"autotune: interrupted ({signum.name})", file=sys.stderr)
        return 128 + signum
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
