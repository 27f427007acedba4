"""A content-addressed cache of judgements shared by runs.

Key: a hash of the judge's fingerprint (backend, model, decoding parameters, prompt version,
decision mode), the metric, the category, the bytes of both images and every text of the prompt.
A second run, or another run that shares edits, computes nothing already judged; changing the
prompt, the judge or an image changes the key. One small JSON file per judgement, written
atomically, so concurrent runs can share a cache folder. Backend errors are never cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from reedit.files import write_bytes_atomic
from reedit.records import fingerprint

log = logging.getLogger(__name__)


def default_root() -> Path:
    base = os.environ.get("REEDIT_CACHE") or Path.home() / ".cache" / "reedit"
    return Path(base).expanduser() / "judgements"


class JudgeCache:
    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_root()
        self._digests: dict[tuple[str, int, int], str] = {}
        self.hits = 0
        self.misses = 0
        self.unwritable: str | None = None  # why judgements are no longer stored (one warning)

    def file_digest(self, path: str | os.PathLike) -> str:
        """sha256 of a file's bytes, memoised by (path, size, mtime) within this process."""
        st = os.stat(path)
        memo = (str(path), st.st_size, st.st_mtime_ns)
        digest = self._digests.get(memo)
        if digest is None:
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            self._digests[memo] = digest
        return digest

    def key(self, judge: dict[str, Any], request: Any) -> str:
        return fingerprint(
            {
                "judge": judge,
                "metric": request.metric,
                "category": request.category,
                "source": self.file_digest(request.source_path),
                "edited": self.file_digest(request.edited_path),
                "texts": [request.instruction, request.description, request.rationale],
            }
        )

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(key).read_bytes())
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store a judgement; a cache that cannot be written (full, read-only) is warned about
        once and then left alone: the judgement is the run's record all the same."""
        if self.unwritable is not None:
            return
        try:
            write_bytes_atomic(json.dumps(value, ensure_ascii=False).encode(), self._path(key))
        except OSError as exc:
            self.unwritable = f"{type(exc).__name__}: {exc}"
            log.warning(
                "judge cache %s cannot be written (%s): this run stores no more judgements "
                "there; its records are complete all the same",
                self.root,
                self.unwritable,
            )
