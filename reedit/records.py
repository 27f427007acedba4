"""Typed records, append-only JSONL record stores (one per stage), atomic artefact writes and
fingerprints.

Records are the truth of a run: every unit of work (an edit, a critique, a judgement) appends one
JSON line, flushed at once, and only after its artefact is on disk. The last record of a key wins,
so a retried unit simply appends a newer line. A :class:`Record` holds the fields every stage
shares and a stage's own payload (a dataclass); :meth:`Record.to_json` writes one flat JSON object
(the format runs have always written) and :meth:`Record.from_json` reads it back, keeping fields
it does not know.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reedit.files import is_disk_full, name_the_file, write_bytes_atomic

log = logging.getLogger(__name__)

OK, ERROR, UNSCORED = "ok", "error", "unscored"
STATUSES = (OK, ERROR, UNSCORED)


def fingerprint(obj: Any) -> str:
    """A short, stable hash of a JSON-able object (key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_image_atomic(image: Any, path: Path, compress_level: int = 1) -> None:
    """Save a PIL image as PNG atomically; an image already in a file (a worker's output, a
    PNG) is renamed into place."""
    if isinstance(image, (str, Path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(image, path)
        except OSError:  # another file system
            shutil.move(str(image), path)
        return
    from reedit.data.png import encode_png

    write_bytes_atomic(encode_png(image, compress_level), path)


# ------------------------------------------------------------------------------- typed records
def only_ok(default: Any = None) -> Any:
    """A payload field written only in ``ok`` records (what an error record cannot have)."""
    return field(default=default, metadata={"only_ok": True})


def if_set(default: Any = None) -> Any:
    """A payload field written only when it is not None."""
    return field(default=default, metadata={"if_set": True})


@dataclass
class EditOutput:
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # the editor's output-size policy etc.
    image: str | None = only_ok()  # relative to the run folder
    size: list[int] | None = only_ok()
    details: dict[str, Any] | None = if_set()  # the model's own facts (a rewritten prompt, ...)


@dataclass
class CritiqueOutput:
    round: int = 1
    attempts: int = 0
    raw: list[str] = field(default_factory=list)  # every reply, in order
    prompt_version: str | None = None
    input: str | None = None  # the edited image critiqued
    substituted: str | None = None  # what that image stands in for (compat), or None
    cot: list[str] | None = only_ok()
    re_edit: list[str] | None = only_ok()


@dataclass
class RefineOutput:
    round: int = 1
    mode: str = "joined"
    instructions: list[str] = field(default_factory=list)  # the executor's prompts, in order
    input: str | None = None  # the image re-edited
    substituted: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    image: str | None = only_ok()
    details: dict[str, Any] | None = if_set()


@dataclass
class JudgementOutput:
    label: str = "primary"  # primary, refined, refined_r2, ...
    metric: str = "dimension"
    attempts: int = 0
    cached: bool = False  # replayed from the judge cache
    raw: list[str] = field(default_factory=list)
    prompt_version: str | None = None
    image: str | None = None  # the image judged
    substituted: str | None = None
    token_probs: dict[str, float] | None = if_set()  # decision=logprob
    value: Any = only_ok()  # "yes"/"no", a score, or [a, b]
    reasoning: str | None = only_ok()
    flags: list[str] | None = only_ok()  # what lenient parsing repaired


# The payload of each stage's records (records/<stage>.jsonl).
PAYLOADS: dict[str, type] = {
    "edit": EditOutput,
    "analyze": CritiqueOutput,
    "refine": RefineOutput,
    "judge": JudgementOutput,
}

_SHARED = ("key", "sample_id", "category", "status", "fingerprint", "seconds", "model")


@dataclass
class Record:
    """One unit's outcome: the shared fields and the stage's payload."""

    key: str
    sample_id: str
    category: str
    status: str  # ok | error | unscored
    payload: Any  # EditOutput, CritiqueOutput, RefineOutput or JudgementOutput
    fingerprint: str | None = None
    seconds: float = 0.0
    model: str | None = None
    error_type: str | None = None  # written when the status is not ok
    error: str | None = None
    stage: str | None = None  # set by the store
    time: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # fields this version does not know

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def substituted(self) -> str | None:
        return getattr(self.payload, "substituted", None)

    def failed(self, error_type: str, error: str) -> None:
        """Turn into an error record (e.g. its image could not be written)."""
        self.status, self.error_type, self.error = ERROR, error_type, error

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in _SHARED}
        for f in dataclasses.fields(self.payload):
            value = getattr(self.payload, f.name)
            if f.metadata.get("only_ok") and self.status != OK:
                continue
            if f.metadata.get("if_set") and value is None:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        if self.status != OK:
            out |= {"error_type": self.error_type, "error": self.error}
        for name in ("stage", "time"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out | self.extra

    @classmethod
    def from_json(cls, data: dict[str, Any], payload: type) -> Record:
        names = {f.name for f in dataclasses.fields(payload)}
        own = {k: v for k, v in data.items() if k in names}
        known = {*_SHARED, "error_type", "error", "stage", "time", *names}
        return cls(
            **{k: data.get(k) for k in _SHARED},
            payload=payload(**own),
            error_type=data.get("error_type"),
            error=data.get("error"),
            stage=data.get("stage"),
            time=data.get("time"),
            extra={k: v for k, v in data.items() if k not in known},
        )


class ArtefactWriter:
    """Writes output images in background threads and appends each record once its image is on
    disk (so a record never points at a missing file). ``close()`` waits for every write."""

    def __init__(self, store: RecordStore, workers: int = 2, compress_level: int = 1) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.store = store
        self.compress_level = compress_level
        self.max_pending = 2 * workers  # back-pressure: bounded images in memory
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="reedit-writer")
        self._pending: list = []

    def submit(self, image: Any, path: Path, record: Record) -> None:
        while len(self._pending) >= self.max_pending:
            self._pending.pop(0).result()
        self._pending.append(self._pool.submit(self._write, image, path, record))

    def _write(self, image: Any, path: Path, record: Record) -> None:
        try:
            write_image_atomic(image, path, self.compress_level)
        except Exception as exc:  # e.g. an image PNG cannot hold: this sample's error
            if is_disk_full(exc):  # the run's: it stops, and the unit stays to do
                raise
            record.failed(type(exc).__name__, f"{path}: {exc}")
        self.store.append(record)

    def close(self) -> None:
        try:
            for future in self._pending:
                future.result()
        finally:
            self._pending.clear()
            self._pool.shutdown(wait=True)


class RecordStore:
    """The records of one stage: ``records/<stage>.jsonl`` (``.rank<k>.jsonl`` per rank).

    Reading merges every file of the stage; writing appends to this process's own file.
    """

    def __init__(self, run_dir: Path, stage: str, rank: int | None = None) -> None:
        self.dir = Path(run_dir) / "records"
        self.stage = stage
        suffix = f".rank{rank}" if rank is not None else ""
        self.path = self.dir / f"{stage}{suffix}.jsonl"
        self._fh = None
        self._lock = threading.Lock()

    def files(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(
            p for p in self.dir.glob(f"{self.stage}*.jsonl") if p.name.split(".")[0] == self.stage
        )

    def records(self, payload: type) -> dict[str, Record]:
        """The latest record per key, typed (``payload``: the stage's payload dataclass)."""
        return {k: Record.from_json(v, payload) for k, v in self.load().items()}

    def load(self) -> dict[str, dict]:
        """The latest record per key over all files of this stage, as written (JSON objects):
        within a file the last line; across files (ranks) the later ``time``, then file order."""
        latest: dict[str, dict] = {}
        for path in self.files():
            for key, rec in self._load_file(path).items():
                old = latest.get(key)
                if old is None or str(rec.get("time", "")) >= str(old.get("time", "")):
                    latest[key] = rec
        return latest

    @staticmethod
    def _load_file(path: Path) -> dict[str, dict]:
        """One file's latest record per key (its last line for the key)."""
        latest: dict[str, dict] = {}
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.endswith("\n"):
                    log.warning("%s:%d: ignoring a partly written last line", path, lineno)
                    break
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    latest[rec["key"]] = rec
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ValueError(
                        f"{path}:{lineno}: not a record ({exc}); this file was edited or "
                        "corrupted by hand: fix or remove that line"
                    ) from None
        return latest

    def append(self, record: Record | dict) -> None:
        """Append one record and flush it (a crash loses at most the units in flight)."""
        if isinstance(record, Record):
            record = record.to_json()
        if "key" not in record or record.get("status") not in STATUSES:
            raise ValueError(f"a record needs a key and a status in {STATUSES}: {record!r}")
        record.setdefault("stage", self.stage)
        record.setdefault("time", _now())
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._fh is None:
                self.dir.mkdir(parents=True, exist_ok=True)
                _drop_partial_tail(self.path)
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - see close()
            try:
                self._fh.write(line)
                self._fh.flush()
            except OSError as exc:  # e.g. the disk is full: a resume cuts the partial line
                name_the_file(exc, self.path)
                raise

    def where(self, key: str) -> str:
        """``<file>:<line>`` of the line :meth:`load` takes for ``key`` (for a message)."""
        found, latest = str(self.dir / f"{self.stage}*.jsonl"), None
        written = json.dumps(key, ensure_ascii=False)  # as append() writes it
        for path in self.files():
            with open(path, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    if written not in line:
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    stamp = str(rec.get("time", ""))
                    if rec.get("key") == key and (latest is None or stamp >= latest):
                        found, latest = f"{path}:{lineno}", stamp
        return found

    def cut_partial_tails(self) -> None:
        """Cut the half-written last line a killed process left in any of the stage's files
        (call only where no process appends to them: before the ranks may write)."""
        for path in self.files():
            _drop_partial_tail(path)

    def archive(self) -> list[Path]:
        """Move this stage's record files to ``records/archive/`` (start the stage afresh)."""
        self.close()
        moved = []
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for path in self.files():
            target = self.dir / "archive" / f"{path.stem}.{stamp}.jsonl"
            n = 1
            while target.exists():  # two archives within one second must not overwrite
                n += 1
                target = self.dir / "archive" / f"{path.stem}.{stamp}-{n}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            moved.append(target)
        return moved

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _now() -> str:
    """A record's time: ISO 8601 to the millisecond (ranks' records of one key are ordered by
    it; the strings sort as the times do)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def end_of_complete_lines(path: Path, chunk: int = 65536) -> int:
    """Where the file's last complete line ends (0: none): a last line without its newline is
    one a killed process left half written."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - chunk)
            f.seek(start)
            found = f.read(end - start).rfind(b"\n")
            if found >= 0:
                return start + found + 1
            end = start
    return 0


def _drop_partial_tail(path: Path) -> None:
    """Cut a last line left half-written by a killed process, so appends stay well-formed."""
    if not path.exists():
        return
    size, keep = path.stat().st_size, end_of_complete_lines(path)
    if keep < size:
        os.truncate(path, keep)
        log.warning("%s: removed a partly written last line (%d bytes)", path, size - keep)


# ------------------------------------------------------------------------------- stage runs
STAGE_RUNS = "stages"  # records/stages[.rank<k>].jsonl


@dataclass
class StageRun:
    """One execution of a stage that had work to do: one line of ``records/stages.jsonl``.

    A resumed run appends its own lines (and a stage of several rounds one per round), so a
    stage's times over the run are the sums of its lines. A process killed mid-stage writes none.
    """

    stage: str  # edit, analyze, refine, judge
    round: int | None  # the refinement round (analyze, refine), else None
    group: str  # the config group of its model (model, executor, refiner, judge)
    model: str | None  # that group's option name
    units: int  # the stage's units in all
    pending: int  # the units this execution took
    done: int = 0  # the records it wrote
    errors: int = 0  # of which error records
    unscored: int = 0  # of which unscored (judgements)
    # The run's model pool loading the stage's model (building or training a tiny model
    # included); 0.0 when an earlier stage had loaded it.
    load_seconds: float = 0.0
    wall_seconds: float = 0.0  # from planning the stage to its last record written
    completed: bool = True  # False: it stopped on an exception (``error``)
    error: str | None = None
    rank: int | None = None
    time: str | None = None  # when it ended
    # The model calls and records of its chunks (load and waits for the other ranks left out):
    # the ranks' busy times say how evenly the work was shared.
    busy_seconds: float = 0.0
    pid: int | None = None  # the rank's process (ranks only)
    # Ranks only: the ranks' lines of one execution share it (their times overlap: the report
    # takes the longest, not the sum).
    execution: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageRun:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class StageLog:
    """``records/stages.jsonl`` (``.rank<k>.jsonl`` per rank): one :class:`StageRun` per line,
    each appended with one ``write`` to a file opened for appending and flushed at once."""

    def __init__(self, run_dir: Path, rank: int | None = None) -> None:
        self.dir = Path(run_dir) / "records"
        suffix = f".rank{rank}" if rank is not None else ""
        self.path = self.dir / f"{STAGE_RUNS}{suffix}.jsonl"

    def append(self, run: StageRun) -> None:
        if run.time is None:
            run.time = time.strftime("%Y-%m-%dT%H:%M:%S")
        line = (json.dumps(run.to_json(), ensure_ascii=False) + "\n").encode()
        self.dir.mkdir(parents=True, exist_ok=True)
        _drop_partial_tail(self.path)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def runs(self) -> list[StageRun]:
        """Every line of every rank's file, in file order (a partly written last line skipped)."""
        out: list[StageRun] = []
        if not self.dir.is_dir():
            return out
        for path in sorted(self.dir.glob(f"{STAGE_RUNS}*.jsonl")):
            if path.name.split(".")[0] != STAGE_RUNS:
                continue
            for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
                if line.endswith("\n") and line.strip():
                    out.append(StageRun.from_json(json.loads(line)))
        return out


def executions(runs: list[StageRun]) -> list[StageRun]:
    """One line per execution of a stage: the ranks' lines of one execution (their times
    overlap) merged: units taken, records, errors and busy time summed, the longest model load
    and wall time; a line of one process as it is."""
    groups: dict[Any, list[StageRun]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(run.execution or i, []).append(run)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        out.append(
            dataclasses.replace(
                group[0],
                pending=sum(r.pending for r in group),
                done=sum(r.done for r in group),
                errors=sum(r.errors for r in group),
                unscored=sum(r.unscored for r in group),
                busy_seconds=round(sum(r.busy_seconds for r in group), 6),
                load_seconds=max(r.load_seconds for r in group),
                wall_seconds=max(r.wall_seconds for r in group),
                completed=all(r.completed for r in group),
                error=next((r.error for r in group if r.error), None),
                rank=None,
                pid=None,
            )
        )
    return out


def status_counts(records: Iterable[dict]) -> dict[str, Any]:
    """ok / error / unscored counts and errors by type."""
    counts = Counter(r["status"] for r in records)
    out: dict[str, Any] = {s: counts.get(s, 0) for s in STATUSES}
    out["total"] = sum(counts.values())
    return out
