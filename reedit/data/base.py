"""Samples, the dataset base class, ids, categories and the decoded-source cache.

A loader yields raw records; :meth:`Dataset.load` validates them, derives ids, rejects id
collisions, handles bad records (``on_bad_record: fail | skip``), writes each source image once
into a shared cache and returns light :class:`Sample` objects whose pixels are decoded on demand.
"""

from __future__ import annotations

import abc
import difflib
import hashlib
import io
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reedit.config import ReeditError
from reedit.schema import CATEGORIES
from reedit.settings import SettingsBase, runtime_field

log = logging.getLogger(__name__)

CATEGORY_ALIASES = {
    "物理": "physical",
    "环境": "environmental",
    "社会": "cultural",
    "文化": "cultural",
    "因果": "causal",
    "指代": "referential",
}


class DatasetError(ReeditError, ValueError):
    """A dataset that cannot be used; the message names the file, record index and field."""


@dataclass(frozen=True)
class BadRecord:
    index: int
    field: str
    message: str
    id: str | None = None

    def __str__(self) -> str:
        who = f"record {self.index}" + (f" ({self.id})" if self.id else "")
        return f"{who}, field '{self.field}': {self.message}"


@dataclass
class Sample:
    """One benchmark item. The source image is decoded from ``source_path`` on each access."""

    id: str
    category: str
    instruction: str
    description: str
    rationale: str
    source_path: Path
    index: int  # position within its category in the dataset file (seed_mode=index)
    record_index: int  # position in the dataset file
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def image(self):  # -> PIL.Image.Image
        from reedit.data.images import decode_image_bytes

        return decode_image_bytes(self.source_path.read_bytes())


@dataclass
class RawRecord:
    """What a loader yields: texts plus the source image as bytes or as a file."""

    index: int
    category: Any
    instruction: Any
    description: Any = ""
    rationale: Any = ""
    id_hint: str | None = None  # the dataset's own id or path, from which the sample id derives
    image_bytes: Callable[[], bytes] | None = None  # called only when the cache misses
    image_file: Path | None = None
    image_field: str = "image"  # the dataset's field named in image errors
    metadata: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field, message) from reading


@dataclass
class LoadResult:
    samples: list[Sample]
    bad_records: list[BadRecord]
    source: str


def normalize_category(value: Any) -> str | None:
    """English category name for a dataset value (case-insensitive; Chinese aliases)."""
    if not isinstance(value, str):
        return None
    v = value.strip()
    if v in CATEGORY_ALIASES:
        return CATEGORY_ALIASES[v]
    v = v.lower()
    return v if v in CATEGORIES else None


def check_categories(names: list[str]) -> list[str]:
    """Validate the `categories` config key, suggesting the close match for a typo."""
    out: list[str] = []
    for name in names:
        canon = normalize_category(name)
        if canon is None:
            close = difflib.get_close_matches(str(name).lower(), CATEGORIES, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise DatasetError(
                f"categories: unknown category '{name}'; known: {', '.join(CATEGORIES)}.{hint}"
            )
        if canon not in out:  # "physical" and "Physical" must not select the samples twice
            out.append(canon)
    return out


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def make_sample_id(hint: str) -> str:
    """A stable, filesystem-safe id from a dataset id or path (extension and folders dropped).

    Anything outside ``[A-Za-z0-9._-]`` becomes ``_``; when that changed the text, a short hash of
    the original keeps distinct originals distinct ("猫" and "狗" do not both become "_").
    """
    stem = hint.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    base, dot, ext = stem.rpartition(".")
    if dot and base and ext.isalnum() and len(ext) <= 5:
        stem = base
    stem = unicodedata.normalize("NFC", stem)
    safe = _UNSAFE.sub("_", stem).strip("._")
    if safe != stem or not safe:
        digest = hashlib.sha1(stem.encode()).hexdigest()[:8]
        safe = f"{safe}_{digest}" if safe else digest
    return safe


class Dataset(abc.ABC):
    """A benchmark dataset. Subclasses implement :meth:`records` (and :meth:`describe`)."""

    # True when cache_key() changes with any change of the data (one file: path, size, mtime):
    # then the validated result is kept as an index and a second load does not parse again.
    indexable = False

    @dataclass
    class Settings(SettingsBase):
        # fail: a bad record stops the load (all bad records listed); skip: drop and report them
        on_bad_record: str = "fail"
        # where decoded source images are cached (shared by runs); null: the user cache dir
        cache_dir: str | None = runtime_field(None)
        # a record whose texts are longer, or whose source image has more pixels, is bad
        max_text_chars: int = 20000
        max_pixels: int = 100_000_000

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.on_bad_record not in ("fail", "skip"):
                raise DatasetError(
                    f"on_bad_record must be 'fail' or 'skip', got '{self.on_bad_record}'"
                )

    def __init__(self, settings: Any = None, **values: Any) -> None:
        self.settings = settings if settings is not None else self.Settings(**values)
        self.on_bad_record = self.settings.on_bad_record
        cache_dir = self.settings.cache_dir
        self.cache_root = Path(
            cache_dir or os.environ.get("REEDIT_CACHE") or Path.home() / ".cache" / "reedit"
        ).expanduser()

    @abc.abstractmethod
    def records(self) -> Iterator[RawRecord]:
        """Yield the dataset's records in file order, one at a time."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the data comes from (a path), for messages and the report."""

    def cache_key(self) -> str:
        """Identifies this dataset version in the source-image cache."""
        return hashlib.sha1(self.describe().encode()).hexdigest()[:16]

    def load(self, categories: list[str] | None = None, limit: int | None = None) -> LoadResult:
        """Validate every record, cache the sources, then select categories and `limit`."""
        categories = check_categories(list(categories or CATEGORIES))
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise DatasetError(f"limit must be a positive integer or null, got {limit!r}")
        cache = self.cache_root / "sources" / self.cache_key()
        index = cache / "index.json" if self.indexable else None
        found = _read_index(index) if index else None
        if found is None:
            found = self._scan(cache)
            if index:
                _write_index(index, *found)
        else:
            log.info(
                "dataset: %s unchanged since it was last read; using its index", self.describe()
            )
        samples, bad = found
        if bad and self.on_bad_record == "fail":
            listing = "\n  ".join(str(b) for b in bad)
            raise DatasetError(
                f"{self.describe()}: {len({b.index for b in bad})} bad record(s):\n  {listing}\n"
                "Fix them, or set dataset.on_bad_record=skip to drop them (they are listed in "
                "the report)."
            )
        for b in bad:
            log.warning("dataset: skipping %s", b)
        selected: list[Sample] = []
        for cat in categories:
            in_cat = [s for s in samples if s.category == cat]
            selected.extend(in_cat[:limit] if limit else in_cat)
        if not selected:  # a run over nothing is not a successful run
            if not samples:
                skipped = f" ({len(bad)} bad records skipped)" if bad else ""
                raise DatasetError(f"{self.describe()}: the dataset holds no samples{skipped}")
            counts = {c: sum(s.category == c for s in samples) for c in CATEGORIES}
            has = ", ".join(f"{c} {n}" for c, n in counts.items() if n)
            raise DatasetError(
                f"categories={categories} select none of the {len(samples)} samples of "
                f"{self.describe()} (it has: {has}); choose among those"
            )
        return LoadResult(samples=selected, bad_records=bad, source=self.describe())

    def _scan(self, cache: Path) -> tuple[list[Sample], list[BadRecord]]:
        """Read and validate every record, writing each new source image into the cache."""
        samples: list[Sample] = []
        bad: list[BadRecord] = []
        seen: dict[str, int] = {}
        per_category: dict[str, int] = {}
        for raw in self.records():
            # Position within the category counts every record of it, bad ones too, so that
            # seed_mode=index gives a sample the same seed whether or not others were skipped.
            category = normalize_category(raw.category)
            position = per_category.get(category, 0) if category else -1
            if category:
                per_category[category] = position + 1
            sample, problems = self._validate(raw, cache, seen)
            ids = {p.id for p in problems if p.id} | ({sample.id} if sample else set())
            for sid in ids:  # ids clash case-insensitively (macOS/Windows file systems)
                seen.setdefault(sid.lower(), raw.index)
            if problems:
                bad.extend(problems)
                continue
            assert sample is not None
            sample.index = position
            samples.append(sample)
        return samples, bad

    def _validate(
        self, raw: RawRecord, cache: Path, seen: dict[str, int]
    ) -> tuple[Sample | None, list[BadRecord]]:
        problems = [BadRecord(raw.index, f, m) for f, m in raw.errors]
        if any(f in ("record", "line") for f, _ in raw.errors):
            return None, problems  # nothing else to check in a line that is not a record
        category = normalize_category(raw.category)
        if category is None:
            problems.append(BadRecord(raw.index, "category", f"unknown category {raw.category!r}"))
        texts = {}
        for name, value, required in (
            ("instruction", raw.instruction, True),
            ("description", raw.description, False),
            ("rationale", raw.rationale, False),
        ):
            if value is None:
                value = ""
            limit = self.settings.max_text_chars
            if not isinstance(value, str):
                problems.append(BadRecord(raw.index, name, f"expected text, got {value!r:.40}"))
                value = ""
            elif required and not value.strip():
                problems.append(BadRecord(raw.index, name, "missing or empty"))
            elif len(value) > limit:
                problems.append(
                    BadRecord(
                        raw.index,
                        name,
                        f"{len(value)} characters, more than dataset.max_text_chars={limit}",
                    )
                )
                value = ""
            texts[name] = value.strip()
        hint = raw.id_hint or (f"{category}_{raw.index:05d}" if category else f"{raw.index:05d}")
        sample_id = make_sample_id(str(hint))
        if sample_id.lower() in seen:
            problems.append(
                BadRecord(
                    raw.index,
                    "id",
                    f"id '{sample_id}' collides with record {seen[sample_id.lower()]} "
                    f"(both derive from {hint!r})",
                    sample_id,
                )
            )
        if problems:
            return None, [
                BadRecord(p.index, p.field, p.message, p.id or sample_id) for p in problems
            ]
        try:
            source = self._cache_source(raw, cache, sample_id)
        except Exception as exc:  # any decoder failure is this record's problem
            return None, [BadRecord(raw.index, raw.image_field, str(exc), sample_id)]
        assert category is not None
        sample = Sample(
            id=sample_id,
            category=category,
            instruction=texts["instruction"],
            description=texts["description"],
            rationale=texts["rationale"],
            source_path=source,
            index=0,
            record_index=raw.index,
            metadata=raw.metadata,
        )
        return sample, []

    def _cache_source(self, raw: RawRecord, cache: Path, sample_id: str) -> Path:
        """Write the source image once; keep plain RGB PNG/JPEG bytes as they are."""
        from reedit.data.images import check_image_bytes, to_rgb
        from reedit.files import write_bytes_atomic

        if raw.image_bytes is None and raw.image_file is None:
            raise ValueError("no image")
        if raw.image_file is not None and not raw.image_file.is_file():
            raise ValueError(f"image file not found: {raw.image_file}")
        name = sample_id
        if raw.image_file is not None:  # a replaced image file must not hit a stale cache entry
            st = raw.image_file.stat()
            name += "-" + hashlib.sha1(f"{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:8]
        target = cache / f"{name}.png"
        if target.is_file() and target.stat().st_size > 0:
            return target
        data = raw.image_file.read_bytes() if raw.image_file else raw.image_bytes()  # type: ignore[misc]
        check_image_bytes(data, self.settings.max_pixels, "dataset.max_pixels")
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            plain = img.format == "PNG" and img.mode == "RGB" and not img.getexif().get(0x0112)
            if not plain:
                img.load()
                buf = io.BytesIO()
                to_rgb(img).save(buf, format="PNG")
                data = buf.getvalue()
        write_bytes_atomic(data, target)
        return target


def _write_index(path: Path, samples: list[Sample], bad: list[BadRecord]) -> None:
    import dataclasses
    import json

    from reedit.files import write_bytes_atomic

    payload = {
        "version": 1,
        "samples": [dataclasses.asdict(s) | {"source_path": s.source_path.name} for s in samples],
        "bad": [dataclasses.asdict(b) for b in bad],
    }
    write_bytes_atomic(json.dumps(payload, ensure_ascii=False).encode(), path)


def _read_index(path: Path) -> tuple[list[Sample], list[BadRecord]] | None:
    """The index of an unchanged dataset, or None (absent, old or its sources gone)."""
    import json

    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("version") != 1:
            return None
        samples = [
            Sample(**(d | {"source_path": path.parent / d["source_path"]}))
            for d in payload["samples"]
        ]
        bad = [BadRecord(**d) for d in payload["bad"]]
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("dataset: ignoring an unreadable index %s (%s)", path, exc)
        return None
    if not all(s.source_path.is_file() for s in samples):
        return None
    return samples, bad
