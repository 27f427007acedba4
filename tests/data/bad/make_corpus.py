# ruff: noqa: E501  (the cases are a table: one line a case, its expected message whole)
"""The bad-input corpus: malformed dataset files and records, and odd images that must load, made
by code (no binaries are committed). ``python tests/data/bad/make_corpus.py <folder>`` writes every
case to ``<folder>/<case>/``; ``tests/test_bad_inputs.py`` builds each case into a temporary folder
and checks its outcome.

A case is an RE-Edit JSON file (``dataset=re_edit``) or a folder with ``samples.jsonl``
(``dataset=folder``), and either an expected error (a regular expression the one-paragraph
message must match: it names the record and the field) or ``None``: it loads, and ``accepts``
names what to check of the loaded sample.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


# ----------------------------------------------------------------------------------- images
def png(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 90, 40)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def png_16bit() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("I;16", (40, 30), 40000).save(buf, "PNG")
    return buf.getvalue()


def cmyk_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("CMYK", (40, 30), (0, 200, 200, 0)).save(buf, "JPEG")
    return buf.getvalue()


def exif_rotated_jpeg() -> bytes:
    """A 60x20 JPEG whose EXIF says: rotate 90 degrees (orientation 6): it shows as 20x60."""
    from PIL import Image

    img = Image.new("RGB", (60, 20), (10, 120, 200))
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def animated_gif() -> bytes:
    from PIL import Image

    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buf.getvalue()


def huge_png_header(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels (a decompression bomb's header) with one
    tiny IDAT: what a reader must refuse from the header, before decoding anything."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ------------------------------------------------------------------------------------ cases
def record(**over: Any) -> dict[str, Any]:
    """A good RE-Edit record, with ``over`` replacing (or, as ``None``-less keys, adding) fields;
    a value ``DROP`` removes the field."""
    rec: dict[str, Any] = {
        "subset": "physical",
        "original_image_path": "physical/lamp.png",
        "edit_instruction_en": "Move the lamp to the left.",
        "original_description_en": "A lamp on a table.",
        "rationale_short_en": "Lamps cast light.",
        "src_img_b64": b64(png()),
    }
    for key, value in over.items():
        if value is DROP:
            rec.pop(key, None)
        else:
            rec[key] = value
    return rec


DROP = object()


@dataclass(frozen=True)
class Case:
    name: str
    write: Callable[[Path], list[str]]  # writes the case into a folder; the run's overrides
    expect: str | None  # the error's pattern; None: it loads
    accepts: str = ""  # for a case that loads: what to check (see tests/test_bad_inputs.py)


def re_edit(content: bytes | str | list | dict) -> Callable[[Path], list[str]]:
    """An RE-Edit file: raw bytes or text as they are, anything else as JSON."""

    def write(folder: Path) -> list[str]:
        path = folder / "RE-Edit.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(json.dumps(content), encoding="utf-8")
        return ["dataset=re_edit", f"dataset.path={path}"]

    return write


def folder(lines: list[bytes | str | dict], images: dict[str, bytes] | None = None):
    """A ``dataset=folder`` root: ``samples.jsonl`` (a dict as JSON, text or bytes as they are)
    and image files."""

    def write(root: Path) -> list[str]:
        for name, data in (images or {}).items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        out = b""
        for line in lines:
            raw = json.dumps(line).encode() if isinstance(line, dict) else line
            out += (raw.encode() if isinstance(raw, str) else raw) + b"\n"
        (root / "samples.jsonl").write_bytes(out)
        return ["dataset=folder", f"dataset.root={root}"]

    return write


def sample(**over: Any) -> dict[str, Any]:
    rec = {"id": "s1", "image": "s1.png", "instruction": "Make it red.", "category": "causal"}
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not DROP}


REC = r"record {i} \({id}\), field '{field}': "


def lamp(field: str) -> str:
    """The start of the message about ``field`` of the corpus's one record (index 0, "lamp")."""
    return REC.format(i=0, id="lamp", field=field)


FILE = r"RE-Edit\.json: "

CASES = [
    # -- a file that is not an RE-Edit list ------------------------------------------------
    Case(
        "truncated_json", re_edit(json.dumps([record(), record()])[:300]), FILE + r"not valid JSON"
    ),
    Case(
        "top_level_object",
        re_edit({"records": [record()]}),
        FILE + r"expected a JSON list of records at the top level, found an object",
    ),
    Case("top_level_string", re_edit('"RE-Edit"'), FILE + r"expected a JSON list .*found b'\"'"),
    Case("empty_file", re_edit(b""), FILE + r"expected a JSON list .*found b''"),
    Case("empty_list", re_edit([]), FILE + r"the dataset holds no samples"),
    Case(
        "non_utf8_bytes",
        re_edit(b'[{"subset": "physical", "edit_instruction_en": "caf\xe9 \xff"}]'),
        FILE + r"not valid JSON",
    ),
    Case("utf8_bom", re_edit(b"\xef\xbb\xbf" + json.dumps([record()]).encode()), None, "loads"),
    # -- records with a bad field ------------------------------------------------------------
    Case(
        "record_not_an_object",
        re_edit([record(), "lamp"]),
        r"record 1, field 'record': not a JSON object",
    ),
    Case(
        "missing_instruction",
        re_edit([record(edit_instruction_en=DROP)]),
        lamp("instruction") + "missing or empty",
    ),
    Case(
        "empty_instruction",
        re_edit([record(edit_instruction_en="")]),
        lamp("instruction") + "missing or empty",
    ),
    Case(
        "blank_instruction",
        re_edit([record(edit_instruction_en="  \n\t ")]),
        lamp("instruction") + "missing or empty",
    ),
    Case(
        "instruction_a_number",
        re_edit([record(edit_instruction_en=42)]),
        lamp("instruction") + "expected text, got 42",
    ),
    Case(
        "instruction_a_list",
        re_edit([record(edit_instruction_en=["a", "b"])]),
        lamp("instruction") + r"expected text, got \['a', 'b'\]",
    ),
    Case(
        "description_an_object",
        re_edit([record(original_description_en={"en": "x"})]),
        lamp("description") + "expected text",
    ),
    Case(
        "huge_instruction",
        re_edit([record(edit_instruction_en="x" * 1_000_000)]),
        lamp("instruction") + r"1000000 characters, more than dataset\.max_text_chars=20000",
    ),
    Case(
        "unknown_category",
        re_edit([record(subset="astrology")]),
        lamp("category") + "unknown category 'astrology'",
    ),
    Case(
        "missing_category",
        re_edit([record(subset=DROP)]),
        lamp("category") + "unknown category None",
    ),
    Case("chinese_category", re_edit([record(subset="因果")]), None, "category causal"),
    Case(
        "missing_image",
        re_edit([record(src_img_b64=DROP)]),
        lamp("src_img_b64") + "missing or empty",
    ),
    Case(
        "empty_image",
        re_edit([record(src_img_b64="")]),
        lamp("src_img_b64") + "missing or empty",
    ),
    Case(
        "image_not_base64",
        re_edit([record(src_img_b64="not base64 at all!!")]),
        lamp("src_img_b64") + "invalid base64",
    ),
    Case(
        "image_base64_of_text",
        re_edit([record(src_img_b64=b64(b"hello, this is no image"))]),
        lamp("src_img_b64") + "cannot decode image",
    ),
    Case(
        "image_truncated_png",
        re_edit([record(src_img_b64=b64(png()[:60]))]),
        lamp("src_img_b64") + "cannot decode image",
    ),
    Case(
        "image_data_uri_without_base64",
        re_edit([record(src_img_b64="data:image/png," + b64(png()))]),
        lamp("src_img_b64") + "data URI without ';base64,'",
    ),
    Case(
        "image_decompression_bomb",
        re_edit([record(src_img_b64=b64(huge_png_header()))]),
        lamp("src_img_b64")
        + r"cannot decode image: 400000000 pixels \(20000x20000\), more than dataset\.max_pixels=100000000",
    ),
    Case("image_1x1", re_edit([record(src_img_b64=b64(png((1, 1))))]), None, "size 1x1"),
    Case(
        "image_data_uri",
        re_edit([record(src_img_b64="data:image/png;base64," + b64(png()))]),
        None,
        "size 64x48",
    ),
    Case(
        "image_animated_gif",
        re_edit([record(src_img_b64=b64(animated_gif()))]),
        None,
        "size 32x32 red",
    ),
    Case("image_cmyk_jpeg", re_edit([record(src_img_b64=b64(cmyk_jpeg()))]), None, "size 40x30"),
    Case("image_16bit_png", re_edit([record(src_img_b64=b64(png_16bit()))]), None, "size 40x30"),
    Case(
        "image_exif_rotated",
        re_edit([record(src_img_b64=b64(exif_rotated_jpeg()))]),
        None,
        "size 20x60",
    ),
    # -- ids -----------------------------------------------------------------------------------
    Case(
        "id_with_dot_dot",
        re_edit([record(original_image_path="../../../../tmp/evil/lamp.png")]),
        None,
        "id lamp",
    ),
    Case("id_all_dots", re_edit([record(original_image_path="../..")]), None, "id safe"),
    Case("id_with_nul", re_edit([record(original_image_path="lamp\x00.png")]), None, "id safe"),
    Case("id_absolute", re_edit([record(original_image_path="/etc/passwd")]), None, "id passwd"),
    Case(
        "duplicate_ids",
        re_edit([record(), record()]),
        r"record 1 \(lamp\), field 'id': id 'lamp' collides with record 0",
    ),
    Case(
        "ids_differing_in_case",
        re_edit([record(), record(original_image_path="physical/LAMP.png")]),
        r"record 1 \(LAMP\), field 'id': id 'LAMP' collides with record 0",
    ),
    Case(
        "extra_fields_kept",
        re_edit([record(difficulty="hard", tags=["a"])]),
        None,
        "metadata difficulty",
    ),
    # -- a folder with samples.jsonl -----------------------------------------------------------
    Case(
        "folder_line_not_json",
        folder(['{"id": "s1", "image": '], {"s1.png": png()}),
        r"record 0, field 'line': not JSON",
    ),
    Case(
        "folder_line_a_list",
        folder(["[1, 2]"], {"s1.png": png()}),
        r"record 0, field 'line': not a JSON object",
    ),
    Case(
        "folder_image_missing",
        folder([sample()]),
        r"record 0 \(s1\), field 'image': image file not found",
    ),
    Case(
        "folder_image_field_missing",
        folder([sample(image=DROP)], {"s1.png": png()}),
        r"record 0 \(s1\), field 'image': missing or empty",
    ),
    Case(
        "folder_non_utf8_line",
        folder(
            [b'{"id": "s1", "image": "s1.png", "instruction": "caf\xe9", "category": "causal"}'],
            {"s1.png": png()},
        ),
        r"record 0, field 'line': not UTF-8",
    ),
    Case(
        "folder_no_index",
        lambda root: ["dataset=folder", f"dataset.root={root}"],
        r"dataset\.root: no samples\.jsonl in ",
    ),
]


def main(out: str) -> None:
    for case in CASES:
        target = Path(out) / case.name
        target.mkdir(parents=True, exist_ok=True)
        overrides = case.write(target)
        (target / "case.json").write_text(
            json.dumps({"overrides": overrides, "expect": case.expect, "accepts": case.accepts})
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bad-corpus")
