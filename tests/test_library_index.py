"""The library index and `animerec library query`: appearance intervals, transactions, output."""

from __future__ import annotations

import csv
import json

import pytest

from animerec import cli
from animerec.library.appearances import AppearanceBuilder
from animerec.library.index import LibraryIndex
from animerec.library.records import Appearance, Status, VideoResult


def test_consecutive_frames_merge_and_short_gaps_do_not_split():
    builder = AppearanceBuilder(fps=10.0, gap_s=0.5)
    timeline = {0: ["gura"], 1: ["gura", "ame"], 2: ["gura"], 3: ["unknown"], 4: ["gura"],  # 0.2 s gap: same
                11: ["gura"], 12: ["ame"]}  # gaps of 0.6 s and 1.0 s: new intervals
    for frame in range(13):
        builder.add(frame / 10, timeline.get(frame, []))
    got = builder.finish()
    assert got == (
        Appearance("gura", 0.0, 0.5, 0.4),
        Appearance("ame", 0.1, 0.2, 0.1),
        Appearance("gura", 1.1, 1.2, 0.1),
        Appearance("ame", 1.2, 1.3, 0.1),
    )
    assert all(a.character != "unknown" for a in got)


def _result(key: str, *appearances: Appearance, status: Status = Status.DONE) -> VideoResult:
    return VideoResult(key, status, checksum="c" * 64, size=10, mtime_ns=1, frames=30, duration=1.0,
                       faces=len(appearances), appearances=appearances)


@pytest.fixture
def library(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    index = LibraryIndex.open(out / "library.sqlite")
    index.record(_result("ep1.mkv", Appearance("gura", 0.0, 12.5, 11.0), Appearance("ame", 3.0, 4.0, 1.0)))
    index.record(_result("s2/ep2.mkv", Appearance("gura", 60.0, 125.5, 65.5)))
    index.record(_result("ep3.mkv", Appearance("gura", 1.0, 2.0, 1.0), status=Status.FAILED))  # not shown
    index.close()
    return out


def test_query_lists_where_a_character_appears(library, capsys):
    assert cli.main(["library", "query", str(library), "--character", "GURA"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["video", "from", "to", "seconds"]
    assert lines[1].split() == ["ep1.mkv", "0:00.0", "0:12.5", "11.0"]
    assert lines[2].split() == ["s2/ep2.mkv", "1:00.0", "2:05.5", "65.5"]
    assert lines[3] == "gura: 2 appearance(s) in 2 video(s), 76.5 s on screen"

    assert cli.main(["library", "query", str(library), "--character", "gura", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)  # exactly one JSON document on stdout
    assert document["seconds"] == 76.5
    assert document["appearances"][0] == {"character": "gura", "video": "ep1.mkv", "from": 0.0, "to": 12.5,
                                          "seconds": 11.0}

    assert cli.main(["library", "query", str(library), "--json"]) == 0
    characters = json.loads(capsys.readouterr().out)["characters"]
    assert [(c["character"], c["videos"], c["seconds"]) for c in characters] == [("gura", 2, 76.5), ("ame", 1, 1.0)]


def test_csv_export_writes_every_table(library, tmp_path, capsys):
    target = tmp_path / "csv"
    assert cli.main(["library", "query", str(library), "--csv", str(target)]) == 0
    assert "wrote" in capsys.readouterr().err
    with open(target / "appearances.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["character"], r["video"], float(r["seconds"])) for r in rows] == [
        ("gura", "ep1.mkv", 11.0), ("ame", "ep1.mkv", 1.0), ("gura", "s2/ep2.mkv", 65.5), ("gura", "ep3.mkv", 1.0)]
    with open(target / "videos.csv", newline="", encoding="utf-8") as handle:
        videos = {r["path"]: r["status"] for r in csv.DictReader(handle)}
    assert videos == {"ep1.mkv": "done", "s2/ep2.mkv": "done", "ep3.mkv": "failed"}
    assert (target / "characters.csv").read_text(encoding="utf-8").splitlines()[0] == "id,name"


def test_a_failed_transaction_leaves_the_index_as_it_was(library):
    index = LibraryIndex.open(library / "library.sqlite")
    with pytest.raises(RuntimeError), index.transaction() as db:
        db.execute("DELETE FROM appearances")
        raise RuntimeError("crash between two statements")
    assert len(index.appearances_of("gura")) == 2
    # Recording a video again replaces its appearances instead of adding to them.
    index.record(_result("ep1.mkv", Appearance("gura", 5.0, 6.0, 1.0)))
    assert [a["from"] for a in index.appearances_of("gura")] == [5.0, 60.0]
    index.close()


def test_query_without_an_index_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["library", "query", str(tmp_path), "--character", "gura"]) == 2
    assert "no library index" in capsys.readouterr().err
