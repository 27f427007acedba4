"""RE-Edit.json: a JSON list of records with inlined base64 source images (several GB).

The file is parsed streaming (``ijson``): one record, and one image's base64, in memory at a time.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit import hub
from reedit.data.base import Dataset, DatasetError, RawRecord

log = logging.getLogger(__name__)

_TEXT_FIELDS = {"edit_instruction_en", "original_description_en", "rationale_short_en"}
_KNOWN = _TEXT_FIELDS | {"subset", "original_image_path", "src_img_b64"}


def decode_b64(value: object) -> bytes:
    """Base64 (optionally behind a ``data:image/...;base64,`` prefix) to bytes."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("missing or empty")
    text = value.strip()
    if text.startswith("data:"):
        head, sep, text = text.partition(",")
        if not sep or ";base64" not in head:
            raise ValueError(f"data URI without ';base64,': {head[:40]!r}")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64: {exc}") from None


class ReEditDataset(Dataset):
    """RE-Edit from ``path``, or from the Hugging Face dataset repo when ``path`` is null."""

    indexable = True

    @dataclass
    class Settings(Dataset.Settings):
        path: str | None = None  # RE-Edit.json; null: downloaded from `repo_id` (HF hub)
        repo_id: str = ""
        filename: str = ""

    def __init__(self, settings: Any = None, **values: Any) -> None:
        super().__init__(settings, **values)
        s = self.settings
        self.path = Path(s.path).expanduser() if s.path else None
        self.repo_id = s.repo_id
        self.filename = s.filename

    def resolve(self) -> Path:
        """The local file: `path`, or the HF cache copy (downloaded once when online)."""
        if self.path is not None:
            if not self.path.is_file():
                raise DatasetError(f"dataset.path: no such file: {self.path}")
            return self.path
        if not self.repo_id:
            raise DatasetError("dataset.path is null and dataset.repo_id is empty: set one")
        offline = hub.offline()  # decided before huggingface_hub reads HF_HUB_OFFLINE at import
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            self.path = Path(
                hf_hub_download(
                    self.repo_id, self.filename, repo_type="dataset", local_files_only=offline
                )
            )
        except Exception as exc:  # offline, no cache, gated, ...
            if offline and isinstance(exc, LocalEntryNotFoundError):
                why = f"is not downloaded and the hub is offline ({hub.offline_reason()})"
            else:
                why = f"cannot be fetched ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            raise DatasetError(
                f"dataset: {self.filename} of the Hugging Face dataset repo {self.repo_id} "
                f"{why}.\n"
                f"Download it once while online:\n"
                f"  hf download {self.repo_id} {self.filename} --repo-type dataset\n"
                f"or point dataset.path at a local copy: dataset.path=/path/to/{self.filename}"
            ) from None
        return self.path

    def describe(self) -> str:
        return str(self.path or f"hf://datasets/{self.repo_id}/{self.filename}")

    def cache_key(self) -> str:
        path = self.resolve()
        st = path.stat()
        import hashlib

        return hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[
            :16
        ]

    def records(self) -> Iterator[RawRecord]:
        import ijson

        path = self.resolve()
        with open(path, "rb") as f:
            first = _first_char(f)
            if first != b"[":
                kind = {b"{": "an object"}.get(first, f"{first!r}")
                raise DatasetError(
                    f"{path}: expected a JSON list of records at the top level, found {kind}"
                )
            f.seek(0)
            if f.read(3) != b"\xef\xbb\xbf":  # ijson does not accept a UTF-8 BOM
                f.seek(0)
            try:
                for index, rec in enumerate(ijson.items(f, "item", use_float=True)):
                    yield self._raw(index, rec)
            except ijson.JSONError as exc:
                raise DatasetError(f"{path}: not valid JSON ({exc})") from None

    @staticmethod
    def _raw(index: int, rec: object) -> RawRecord:
        if not isinstance(rec, dict):
            return RawRecord(index, None, None, errors=[("record", "not a JSON object")])
        b64 = rec.get("src_img_b64")
        errors = []
        if not isinstance(b64, str) or not b64.strip():
            errors.append(("src_img_b64", "missing or empty"))
        path = rec.get("original_image_path")
        return RawRecord(
            index=index,
            category=rec.get("subset"),
            instruction=rec.get("edit_instruction_en"),
            description=rec.get("original_description_en"),
            rationale=rec.get("rationale_short_en"),
            id_hint=path if isinstance(path, str) and path.strip() else None,
            image_bytes=(lambda: decode_b64(b64)) if not errors else None,
            image_field="src_img_b64",
            metadata={k: v for k, v in rec.items() if k not in _KNOWN}
            | ({"original_image_path": path} if path else {}),
            errors=errors,
        )


def _first_char(f) -> bytes:
    head = f.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    return head[:1]
