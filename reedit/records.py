"""Append-only JSONL record stores (one per stage), atomic artefact writes and fingerprints.

Records are the truth of a run: every unit of work (an edit, a critique, a judgement) appends one
JSON line, flushed at once, and only after its artefact is on disk. The last record of a key wins,
so a retried unit simply appends a newer line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

OK, ERROR, UNSCORED = "ok", "error", "unscored"
STATUSES = (OK, ERROR, UNSCORED)


def fingerprint(obj: Any) -> str:
    """A short, stable hash of a JSON-able object (key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write to a temporary name in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_image_atomic(image: Any, path: Path, compress_level: int = 1) -> None:
    """Save a PIL image as PNG atomically."""
    from reedit.data.png import encode_png

    write_bytes_atomic(encode_png(image, compress_level), path)


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

    def submit(self, image: Any, path: Path, record: dict) -> None:
        while len(self._pending) >= self.max_pending:
            self._pending.pop(0).result()
        self._pending.append(self._pool.submit(self._write, image, path, record))

    def _write(self, image: Any, path: Path, record: dict) -> None:
        try:
            write_image_atomic(image, path, self.compress_level)
        except Exception as exc:  # e.g. disk full: this sample's error, the run goes on
            record.update(status=ERROR, error_type=type(exc).__name__, error=f"{path}: {exc}")
            record.pop("image", None)
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

    def load(self) -> dict[str, dict]:
        """The latest record per key over all files of this stage."""
        latest: dict[str, dict] = {}
        for path in self.files():
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

    def append(self, record: dict) -> None:
        """Append one record and flush it (a crash loses at most the units in flight)."""
        if "key" not in record or record.get("status") not in STATUSES:
            raise ValueError(f"a record needs a key and a status in {STATUSES}: {record!r}")
        record.setdefault("stage", self.stage)
        record.setdefault("time", time.strftime("%Y-%m-%dT%H:%M:%S"))
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._fh is None:
                self.dir.mkdir(parents=True, exist_ok=True)
                _drop_partial_tail(self.path)
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - see close()
            self._fh.write(line)
            self._fh.flush()

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


def _drop_partial_tail(path: Path) -> None:
    """Cut a last line left half-written by a killed process, so appends stay well-formed."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        data = f.seek(0) or f.read()
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)
        log.warning("%s: removed a partly written last line (%d bytes)", path, len(data) - keep)


def status_counts(records: Iterable[dict]) -> dict[str, Any]:
    """ok / error / unscored counts and errors by type."""
    counts = Counter(r["status"] for r in records)
    out: dict[str, Any] = {s: counts.get(s, 0) for s in STATUSES}
    out["total"] = sum(counts.values())
    return out
