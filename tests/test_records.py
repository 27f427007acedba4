"""Append-only JSONL record stores, atomic artefact writes and fingerprints."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

import reedit.records as records_mod
from reedit.records import (
    STATUSES,
    ArtefactWriter,
    Record,
    RecordStore,
    fingerprint,
    status_counts,
    write_bytes_atomic,
    write_image_atomic,
)


def _lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


# ---------------------------------------------------------------- append / load


def test_append_and_load_last_record_wins(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, "edit")
    store.append({"key": "a", "status": "error", "error": "boom"})
    store.append({"key": "b", "status": "ok", "value": 1})
    store.append({"key": "a", "status": "ok", "value": 2})
    store.close()
    store2 = RecordStore(tmp_path, "edit")  # a later process appends to the same file
    store2.append({"key": "b", "status": "unscored", "value": 3})
    store2.close()

    assert store.path == tmp_path / "records" / "edit.jsonl"
    assert len(_lines(store.path)) == 4  # append-only: nothing rewritten
    latest = RecordStore(tmp_path, "edit").load()
    assert set(latest) == {"a", "b"}
    assert (latest["a"]["status"], latest["a"]["value"]) == ("ok", 2)
    assert (latest["b"]["status"], latest["b"]["value"]) == ("unscored", 3)
    assert latest["a"]["stage"] == "edit" and latest["a"]["time"]


def test_each_append_is_flushed(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, "judge")
    store.append({"key": "k1", "status": "ok", "text": "猫"})
    # readable by another reader before close()
    assert RecordStore(tmp_path, "judge").load()["k1"]["text"] == "猫"
    store.append({"key": "k2", "status": "ok"})
    assert set(RecordStore(tmp_path, "judge").load()) == {"k1", "k2"}
    store.close()


def test_empty_store_loads_empty(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, "edit")
    assert store.files() == [] and store.load() == {}


def test_stage_files_merge_other_stages_do_not(tmp_path: Path) -> None:
    main = RecordStore(tmp_path, "edit")
    rank1 = RecordStore(tmp_path, "edit", rank=1)
    extra = RecordStore(tmp_path, "edit_extra")
    refine = RecordStore(tmp_path, "edit2")
    main.append({"key": "a", "status": "ok", "who": "main"})
    rank1.append({"key": "b", "status": "ok", "who": "rank1"})
    extra.append({"key": "c", "status": "ok", "who": "extra"})
    extra.append({"key": "a", "status": "error", "who": "extra"})
    refine.append({"key": "d", "status": "ok"})
    for s in (main, rank1, extra, refine):
        s.close()

    assert rank1.path.name == "edit.rank1.jsonl"
    assert [p.name for p in main.files()] == ["edit.jsonl", "edit.rank1.jsonl"]
    latest = RecordStore(tmp_path, "edit").load()
    assert set(latest) == {"a", "b"}
    assert latest["a"]["who"] == "main" and latest["b"]["who"] == "rank1"
    assert set(RecordStore(tmp_path, "edit_extra").load()) == {"c", "a"}
    assert set(RecordStore(tmp_path, "edit2").load()) == {"d"}


def test_partial_last_line_ignored_then_cut_before_append(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, "critique")
    store.append({"key": "a", "status": "ok"})
    store.append({"key": "b", "status": "ok"})
    store.close()
    # a process killed mid-write leaves a line without its newline
    with open(store.path, "a", encoding="utf-8") as f:
        f.write('{"key": "c", "status": "ok", "text": "half')

    assert set(RecordStore(tmp_path, "critique").load()) == {"a", "b"}

    again = RecordStore(tmp_path, "critique")
    again.append({"key": "c", "status": "ok", "text": "whole"})
    again.close()
    lines = _lines(store.path)  # every line parses: the file is valid JSONL
    assert [r["key"] for r in lines] == ["a", "b", "c"]
    latest = RecordStore(tmp_path, "critique").load()
    assert latest["c"]["text"] == "whole"


def test_partial_only_line_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "records" / "edit.jsonl"
    path.parent.mkdir()
    path.write_text('{"key": "x", "sta')
    assert RecordStore(tmp_path, "edit").load() == {}
    store = RecordStore(tmp_path, "edit")
    store.append({"key": "y", "status": "ok"})
    store.close()
    assert [r["key"] for r in _lines(path)] == ["y"]


@pytest.mark.parametrize(
    "record",
    [
        {"status": "ok"},
        {"key": "a"},
        {"key": "a", "status": "done"},
        {"key": "a", "status": "OK"},
        {"key": "a", "status": None},
    ],
)
def test_append_rejects_missing_key_or_unknown_status(tmp_path: Path, record: dict) -> None:
    store = RecordStore(tmp_path, "edit")
    with pytest.raises(ValueError, match="key and a status"):
        store.append(record)
    store.close()
    assert not store.path.exists() or store.path.read_text() == ""


def test_statuses() -> None:
    assert STATUSES == ("ok", "error", "unscored")
    counts = status_counts(
        [{"status": "ok"}, {"status": "ok"}, {"status": "error"}, {"status": "unscored"}]
    )
    assert counts == {"ok": 2, "error": 1, "unscored": 1, "total": 4}


def test_archive_moves_stage_files(tmp_path: Path, monkeypatch) -> None:
    # both archives happen "within the same second"
    monkeypatch.setattr(records_mod.time, "strftime", lambda fmt, *a: "20250101-120000")
    store = RecordStore(tmp_path, "edit")
    rank = RecordStore(tmp_path, "edit", rank=2)
    other = RecordStore(tmp_path, "judge")
    store.append({"key": "a", "status": "ok"})
    rank.append({"key": "b", "status": "ok"})
    other.append({"key": "j", "status": "ok"})
    rank.close()
    other.close()

    moved = store.archive()
    archive = tmp_path / "records" / "archive"
    assert len(moved) == 2 and all(p.parent == archive and p.is_file() for p in moved)
    assert sorted(p.name.split(".")[0] for p in moved) == ["edit", "edit"]
    assert any(".rank2." in p.name for p in moved)
    assert store.files() == [] and store.load() == {}
    assert set(RecordStore(tmp_path, "judge").load()) == {"j"}  # other stages untouched

    # the store starts afresh after archiving; a second archive keeps the first one
    store.append({"key": "new", "status": "ok"})
    assert set(store.load()) == {"new"}
    moved2 = store.archive()
    assert len(moved2) == 1
    archived = sorted(archive.iterdir())
    assert len(archived) == 3
    keys = sorted(r["key"] for p in archived for r in _lines(p))
    assert keys == ["a", "b", "new"]


# ---------------------------------------------------------------- atomic writes


def test_write_bytes_atomic(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "blob.bin"
    write_bytes_atomic(b"first", target)
    assert target.read_bytes() == b"first"
    write_bytes_atomic(b"second", target)
    assert target.read_bytes() == b"second"
    assert _leftovers(tmp_path) == []
    assert sorted(p.name for p in target.parent.iterdir()) == ["blob.bin"]


def test_write_image_atomic(tmp_path: Path) -> None:
    target = tmp_path / "out" / "edit.png"
    write_image_atomic(Image.new("RGB", (3, 2), (1, 2, 3)), target)
    with Image.open(target) as img:
        assert (img.format, img.size, img.getpixel((0, 0))) == ("PNG", (3, 2), (1, 2, 3))
    write_image_atomic(Image.new("RGB", (5, 4), (9, 8, 7)), target)
    with Image.open(target) as img:
        assert (img.size, img.getpixel((4, 3))) == ((5, 4), (9, 8, 7))
    assert _leftovers(tmp_path) == []
    assert [p.name for p in target.parent.iterdir()] == ["edit.png"]


@pytest.mark.parametrize("kind", ["bytes", "image"])
def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch, kind: str) -> None:
    target = tmp_path / "edit.png"
    write_image_atomic(Image.new("RGB", (2, 2), (4, 5, 6)), target)
    before = target.read_bytes()

    def boom(src, dst):
        assert Path(src).is_file()  # the complete data went to a temporary name first
        raise OSError("disk full")

    monkeypatch.setattr(records_mod.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        if kind == "bytes":
            write_bytes_atomic(b"new", target)
        else:
            write_image_atomic(Image.new("RGB", (3, 3)), target)
    assert target.read_bytes() == before  # the old file is intact
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------- fingerprint


def test_fingerprint() -> None:
    a = {"model": "x", "params": {"steps": 28, "guidance": 4.0}, "seed": [1, 2]}
    b = {"seed": [1, 2], "params": {"guidance": 4.0, "steps": 28}, "model": "x"}
    assert fingerprint(a) == fingerprint(b)
    assert len(fingerprint(a)) == 16
    assert fingerprint(a) != fingerprint({**a, "model": "y"})
    assert fingerprint(a) != fingerprint({**a, "params": {"steps": 29, "guidance": 4.0}})
    assert fingerprint(a) != fingerprint({**a, "seed": [2, 1]})  # list order matters
    assert fingerprint(Path("/x")) == fingerprint("/x")  # non-JSON values via str()


# ------------------------------------------------------------------ corrupt lines, PNG, writer
def test_corrupt_middle_line_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "judge.jsonl").write_text('{"key": "a", "status": "ok"}\nnot json\n')
    with pytest.raises(ValueError, match=r"judge\.jsonl:2: not a record"):
        RecordStore(tmp_path, "judge").load()


@pytest.mark.parametrize("mode,size", [("RGB", (37, 11)), ("RGBA", (5, 9)), ("L", (1, 1))])
def test_encode_png_round_trips(mode: str, size: tuple[int, int]) -> None:
    import io

    import numpy as np

    from reedit.data.png import encode_png

    rng = np.random.default_rng(1)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    img = Image.fromarray(arr.squeeze(-1) if channels == 1 else arr, mode)
    for level in (0, 1, 9):
        decoded = Image.open(io.BytesIO(encode_png(img, level)))
        assert decoded.mode == "RGB" and decoded.size == size
        assert np.array_equal(np.asarray(decoded), np.asarray(img.convert("RGB")))


def test_artefact_writer_appends_records_after_their_images(tmp_path: Path, monkeypatch) -> None:
    store = RecordStore(tmp_path, "edit")
    seen_on_disk = []
    real_append = store.append

    def append(record: records_mod.Record) -> None:
        if record.status == "ok":
            seen_on_disk.append((tmp_path / record.payload.image).is_file())
        real_append(record)

    monkeypatch.setattr(store, "append", append)
    writer = records_mod.ArtefactWriter(store, workers=2)
    for i in range(7):
        path = tmp_path / "images" / f"{i}.png"
        writer.submit(Image.new("RGB", (4, 4), (i, 0, 0)), path, edit_record(str(i)))
    writer.close()
    store.close()
    assert seen_on_disk == [True] * 7
    assert set(store.load()) == {str(i) for i in range(7)}
    assert Image.open(tmp_path / "images" / "3.png").getpixel((0, 0)) == (3, 0, 0)


def test_artefact_writer_failure_is_an_error_record(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, "edit")
    blocker = tmp_path / "images"
    blocker.write_text("a file where a folder should be")
    writer = records_mod.ArtefactWriter(store)
    writer.submit(Image.new("RGB", (4, 4)), blocker / "x.png", edit_record("x"))
    writer.close()
    rec = store.load()["x"]
    assert rec["status"] == "error" and "image" not in rec and "x.png" in rec["error"]
    assert rec["error_type"] in ("FileExistsError", "NotADirectoryError")


def edit_record(key: str) -> records_mod.Record:
    payload = records_mod.EditOutput(seed=1, image=f"images/{key}.png", size=[4, 4])
    return records_mod.Record(key, key, "physical", "ok", payload)


# ------------------------------------------------------------------------------- typed records
OLD_JUDGEMENT = {  # a line as the pre-restructuring version wrote it
    "key": "s1/primary/sc",
    "sample_id": "s1",
    "category": "physical",
    "label": "primary",
    "metric": "sc",
    "status": "ok",
    "fingerprint": "abc",
    "seconds": 0.5,
    "attempts": 1,
    "cached": False,
    "raw": ['{"score": [8, 9]}'],
    "model": "tiny:qwen3_vl_judge",
    "prompt_version": "v1",
    "image": "/run/images/physical/s1/primary.png",
    "substituted": None,
    "value": [8, 9],
    "reasoning": "fine",
    "flags": [],
    "stage": "judge",
    "time": "2026-12-01T21:36:45",
}


def test_a_record_reads_and_writes_the_flat_json_it_always_had() -> None:
    rec = records_mod.Record.from_json(OLD_JUDGEMENT, records_mod.JudgementOutput)
    assert rec.payload.value == [8, 9] and rec.payload.label == "primary" and rec.ok
    assert rec.to_json() == OLD_JUDGEMENT


def test_fields_this_version_does_not_know_are_kept() -> None:
    line = OLD_JUDGEMENT | {"added_later": {"x": 1}}
    rec = records_mod.Record.from_json(line, records_mod.JudgementOutput)
    assert rec.extra == {"added_later": {"x": 1}} and rec.to_json() == line


def test_error_records_carry_the_error_and_no_value() -> None:
    payload = records_mod.JudgementOutput(metric="if", value=7.0, reasoning="r", flags=[])
    rec = records_mod.Record("s/primary/if", "s", "causal", "ok", payload)
    assert {"value", "reasoning", "flags"} <= set(rec.to_json())
    assert "error" not in rec.to_json() and "token_probs" not in rec.to_json()
    rec.failed("RuntimeError", "boom")
    out = rec.to_json()
    assert (
        out["status"] == "error" and out["error"] == "boom" and out["error_type"] == "RuntimeError"
    )
    assert not {"value", "reasoning", "flags"} & set(out)


def test_the_store_reads_typed_records_of_older_lines(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, "judge")
    store.append(dict(OLD_JUDGEMENT))
    (rec,) = store.records(records_mod.JudgementOutput).values()
    assert rec.payload.value == [8, 9] and rec.fingerprint == "abc"


def test_across_rank_files_the_later_record_of_a_key_wins(tmp_path: Path) -> None:
    """A retry on ranks can redo a unit in another rank's file than its old error: the later
    record wins whichever file sorts first (within a file, the last line)."""
    RecordStore(tmp_path, "edit", rank=1).append(
        {"key": "a", "status": "error", "time": "2026-12-02T10:00:00.500"}
    )
    RecordStore(tmp_path, "edit", rank=0).append(
        {"key": "a", "status": "ok", "time": "2026-12-02T10:00:01.000"}
    )
    RecordStore(tmp_path, "edit", rank=0).append({"key": "b", "status": "error", "time": "2"})
    RecordStore(tmp_path, "edit", rank=0).append({"key": "b", "status": "ok", "time": "1"})
    latest = RecordStore(tmp_path, "edit").load()
    assert latest["a"]["status"] == "ok" and latest["b"]["status"] == "ok"
    rec = RecordStore(tmp_path, "edit", rank=2)
    rec.append({"key": "c", "status": "ok"})
    rec.close()
    stamp = RecordStore(tmp_path, "edit").load()["c"]["time"]
    assert len(stamp) == len("2026-12-02T10:00:01.000") and stamp[19] == "."


def test_a_full_disk_is_the_runs_error_not_the_samples_and_names_the_file(tmp_path: Path):
    """ENOSPC while an image is written: no error record (the unit stays to do, so a plain rerun
    completes it), the error raised where the stage waits for its writes, naming the file."""
    import errno

    store = RecordStore(tmp_path, "edit")
    writer = ArtefactWriter(store)
    full = OSError(errno.ENOSPC, "No space left on device")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(records_mod, "write_image_atomic", lambda *a: (_ for _ in ()).throw(full))
        writer.submit(
            Image.new("RGB", (2, 2)), tmp_path / "a.png", Record("a", "s", "c", "ok", None)
        )
        with pytest.raises(OSError, match="No space left on device"):
            writer.close()
    assert store.load() == {}  # nothing recorded for it: still to do

    class FullFile(io.BytesIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_open(path, mode):
        Path(path).touch()
        return FullFile()

    import reedit.files as files_mod

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(files_mod, "open", full_open, raising=False)
        with pytest.raises(OSError, match=r"No space left on device: '.*b\.png'"):
            write_bytes_atomic(b"png", tmp_path / "b.png")
    assert _leftovers(tmp_path) == []


def test_only_temporaries_of_ended_writers_of_this_host_are_removed(tmp_path: Path) -> None:
    """What a killed write left is removed when the next run starts; a live writer's (a rank,
    a worker, another machine) and another run's folder are left alone."""
    import os
    import socket
    import subprocess
    import sys

    from reedit.files import remove_temporaries

    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        timeout=60,
        capture_output=True,
        text=True,
        check=True,
    )
    dead, host = int(ended.stdout), socket.gethostname()
    names = {
        "dead": f"images/a/.primary.png.tmp-{host}-{dead}-1",
        "legacy": f"records/.x.json.tmp-{dead}-7",  # before the host was part of the name
        "alive": f"images/b/.primary.png.tmp-{host}-{os.getpid()}-1",
        "other_host": f"images/c/.primary.png.tmp-node-17.cluster-{dead}-1",
        "other_run": f"sub/images/.primary.png.tmp-{host}-{dead}-1",
        "not_ours": "images/.gitkeep",
    }
    for rel in names.values():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "sub" / ".reedit.lock").write_text("{}")
    assert remove_temporaries(tmp_path, run_markers=(".reedit.lock",)) == 2
    left = {k for k, rel in names.items() if (tmp_path / rel).exists()}
    assert left == {"alive", "other_host", "other_run", "not_ours"}
