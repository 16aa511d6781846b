"""`animerec library query OUTDIR [--character NAME] [--csv DIR] [--json]`: who appears where.

Reads OUTDIR/library.sqlite, written by `animerec annotate DIR -o OUTDIR` (read-only: a query
during a running job sees the videos finished so far and never blocks the job). With
--character, every interval in which that character is named (video, from, to, seconds);
without, every character with the number of videos and seconds on screen. --csv DIR writes
the index's tables (videos.csv, characters.csv, appearances.csv) for spreadsheets.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from animerec.commands import examples
from animerec.errors import EXIT_OK

TABLES = ("videos", "characters", "appearances")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "library", help="query the index of an annotated library",
        description="Query the index of a library annotated with `animerec annotate DIR -o OUTDIR`.",
        epilog=examples("animerec library query annotated/ --character gura",
                        "animerec library query annotated/ --csv tables/"),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    query = actions.add_parser(
        "query", help="where characters appear (from OUTDIR/library.sqlite)",
        description="Where characters appear in an annotated library, from OUTDIR/library.sqlite.",
        epilog=examples("animerec library query annotated/ --character gura",
                        "animerec library query annotated/ --json"),
    )
    query.add_argument("outdir", type=Path, metavar="OUTDIR", help="the -o folder of `annotate DIR -o OUTDIR`")
    query.add_argument("--character", metavar="NAME", help="list this character's appearances (any letter case)")
    query.add_argument("--csv", type=Path, metavar="DIR", help="also export the index's tables as CSV files here")
    query.add_argument("--json", action="store_true", help="print one JSON document on standard output")
    query.set_defaults(handler=run_query)


def run_query(args: argparse.Namespace) -> int:
    from animerec.library.index import LibraryIndex
    from animerec.library.jobs import INDEX_NAME

    index = LibraryIndex.read_only(args.outdir / INDEX_NAME)
    try:
        if args.csv is not None:
            written = export_csv(index, args.csv)
            print(f"animerec: wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
        if args.character is not None:
            rows = index.appearances_of(args.character)
            document: Any = {"character": args.character, "appearances": rows,
                             "seconds": round(sum(r["seconds"] for r in rows), 3)}
            text = _appearances_text(args.character, rows)
        else:
            rows = index.characters()
            document, text = {"characters": rows}, _characters_text(rows)
    finally:
        index.close()
    print(json.dumps(document, ensure_ascii=False) if args.json else text)
    return EXIT_OK


def export_csv(index: Any, folder: Path) -> list[Path]:
    """One CSV file per table (header row first), each written under a temporary name and renamed."""
    from animerec.outputs import atomic_output, check_folder

    check_folder(folder)
    written = []
    for name in TABLES:
        columns, rows = index.table(name)
        path = folder / f"{name}.csv"
        with atomic_output(path) as temporary, open(temporary, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
        written.append(path)
    return written


def _appearances_text(name: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return f"{name}: no appearances in this library"
    width = max(len("video"), *(len(r["video"]) for r in rows))
    lines = [f"{'video':<{width}}  {'from':>9}  {'to':>9}  {'seconds':>8}"]
    lines += [f"{r['video']:<{width}}  {_clock(r['from']):>9}  {_clock(r['to']):>9}  {r['seconds']:>8.1f}"
              for r in rows]
    videos = len({r["video"] for r in rows})
    lines.append(f"{rows[0]['character']}: {len(rows)} appearance(s) in {videos} video(s), "
                 f"{sum(r['seconds'] for r in rows):.1f} s on screen")
    return "\n".join(lines)


def _characters_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no named characters in this library yet"
    width = max(len("character"), *(len(r["character"]) for r in rows))
    lines = [f"{'character':<{width}}  {'videos':>6}  {'seconds':>9}"]
    lines += [f"{r['character']:<{width}}  {r['videos']:>6}  {r['seconds']:>9.1f}" for r in rows]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    """12.5 -> 0:12.5, 3725.0 -> 1:02:05.0: readable positions in an episode."""
    minutes, rest = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"
