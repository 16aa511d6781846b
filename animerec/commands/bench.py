"""`animerec bench [--quick] [--library] [--json PATH] [--md PATH] [--plots DIR] [--video FILE]
[--videos-dir DIR] [--soak-minutes N] [--overwrite]`.

FPS, latency, memory and quality of the pipeline against the report's loop and the limits of its
parts, all measured in one run (see animerec/benchmarks/runner.py). `--quick` is the seconds-long
smoke run the test suite executes. `--library` also measures library jobs (`annotate DIR -o
OUTDIR`): videos per hour with 1, 2 and all cores, in local processes and on a local Ray instance
(minutes; 2 clips of 24 frames with `--quick`, 6 of 144 otherwise; off by default). `--video`
adds a clip at its own size, `--videos-dir` names the real clips, `--soak-minutes N` adds a live
memory soak, `--overwrite` replaces existing outputs. Nothing is written inside the repository
unless an output flag asks for it; with `--json -` standard output carries the JSON document only.
With no output flag the Markdown report goes to standard output.

    animerec bench --library --md benchmarks/RESULTS.md --plots benchmarks/ --json benchmarks/results.json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from animerec.commands import examples
from animerec.config import add_config_args, config_from_args
from animerec.errors import EXIT_FAILURE, EXIT_OK, UsageError

DEFAULT_VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="FPS, latency and quality benchmarks against the report's loop",
        description="FPS, latency, flicker, memory and quality benchmarks against the report's loop.",
        epilog=examples("animerec bench --quick",
                        "animerec bench --json results.json --md RESULTS.md --plots plots/"),
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds (the test suite runs it)")
    parser.add_argument("--json", metavar="PATH", help="write the JSON report to PATH ('-' = standard output)")
    parser.add_argument("--md", type=Path, metavar="PATH", help="write the Markdown report to PATH")
    parser.add_argument("--plots", type=Path, metavar="DIR", help="write the PNG plots into DIR")
    parser.add_argument("--video", type=Path, action="append", default=[], metavar="FILE",
                        help="also measure this video, at its own size (repeatable)")
    parser.add_argument("--videos-dir", type=Path, default=DEFAULT_VIDEOS, metavar="DIR",
                        help="real anime clips scaled to each resolution (default ../shared/data/videos; "
                             "skipped, and said so, when absent)")
    parser.add_argument("--soak-minutes", type=float, default=0.0, metavar="N",
                        help="also run live for N minutes (N >= 2) and measure memory growth from minute 1 to N")
    parser.add_argument("--library", action="store_true",
                        help="also measure library jobs: videos per hour with 1, 2 and all cores, locally and "
                             "on a local Ray instance (takes minutes)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_config_args(parser)
    parser.set_defaults(handler=run)


def _outputs(args: argparse.Namespace) -> list[Path]:
    from animerec.benchmarks.report import FPS_PLOT, LATENCY_PLOT

    paths = [args.md] if args.md else []
    if args.json and args.json != "-":
        paths.append(Path(args.json))
    if args.plots:
        paths += [args.plots / FPS_PLOT, args.plots / LATENCY_PLOT]
    return paths


def _write(path: Path, text: str) -> None:
    from animerec.outputs import atomic_output

    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    from animerec.benchmarks.report import to_json, to_markdown, write_plots
    from animerec.benchmarks.runner import BenchOptions, run_bench, say
    from animerec.benchmarks.targets import summary
    from animerec.benchmarks.workloads import FULL, QUICK
    from animerec.outputs import check_output

    if args.soak_minutes and args.soak_minutes < 2:
        raise UsageError("--soak-minutes must be at least 2 (growth is measured from minute 1)")
    for video in args.video:
        if not video.is_file():
            raise UsageError(f"--video {video}: no such file")
    for path in _outputs(args):
        check_output(path, args.overwrite)  # every refusal before minutes of measuring
    config = config_from_args(args)
    options = BenchOptions(
        profile=QUICK if args.quick else FULL,
        config=config,
        model=config.model_path(),
        videos_dir=args.videos_dir,
        user_videos=list(args.video),
        soak_minutes=args.soak_minutes,
        library=args.library,
    )
    result = run_bench(options)
    report = result.report
    plots: list[str] = []
    if args.plots:
        names = write_plots(report, result.latencies_ms, args.plots)
        base = args.md.parent if args.md else Path(".")
        plots = [os.path.relpath(args.plots / name, base) for name in names]
    markdown = to_markdown(report, plots)
    if args.md:
        from animerec.benchmarks.report import gpu_section, with_gpu_section

        kept = gpu_section(args.md.read_text(encoding="utf-8")) if args.md.is_file() else ""
        _write(args.md, with_gpu_section(markdown, kept) if kept else markdown)
    if args.json == "-":
        print(to_json(report))
    elif args.json:
        _write(Path(args.json), to_json(report))
    if not args.md and not args.json:
        print(markdown)
    say(f"done in {report['duration_s']} s: {summary(report['targets'])}")
    if result.failed:
        print(f"animerec: error: benchmark workers failed: {', '.join(result.failed)}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
