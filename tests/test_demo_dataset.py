"""Tests for the shipped demo dataset reedit/data/demo/re_edit_demo.json and its builder."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reedit.data.images import decode_image_bytes
from reedit.testing import demo_data as build_demo

SHIPPED = build_demo.DEFAULT_OUTPUT
EXPECTED_SUBSETS = [
    "physical",
    "physical",
    "environmental",
    "environmental",
    "cultural",
    "cultural",
    "causal",
    "causal",
    "referential",
    "referential",
]
FIELDS = {
    "subset",
    "original_image_path",
    "src_img_b64",
    "edit_instruction_en",
    "original_description_en",
    "rationale_short_en",
    "edit_instruction",
    "original_description",
    "rationale_short",
    "difficulty",
    "tags",
    "seed",
}
DATA_URI = "data:image/png;base64,"


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return json.loads(SHIPPED.read_text(encoding="utf-8"))


def _image_bytes(record: dict) -> bytes:
    b64 = record["src_img_b64"]
    if b64.startswith("data:"):
        b64 = b64.split(",", 1)[1]
    return base64.b64decode(b64, validate=True)


def _without_images(records: list[dict]) -> str:
    stripped = [{**r, "src_img_b64": ""} for r in records]
    return build_demo.render(stripped)


def test_shipped_json_matches_builder(tmp_path: Path) -> None:
    built = build_demo.build(tmp_path / "demo.json")
    fresh, shipped = built.read_bytes(), SHIPPED.read_bytes()
    if fresh == shipped:
        return
    # Byte-for-byte equality is expected. The only tolerated difference is the PNG compressor
    # output (Pillow wheels ship different zlib builds): then every text field must still match
    # exactly and every image must decode to identical pixels. Rebuild the JSON to fix drift.
    fresh_records = json.loads(fresh)
    shipped_records = json.loads(shipped)
    assert _without_images(fresh_records) == _without_images(shipped_records), (
        "re_edit_demo.json is out of date: run python -m reedit.testing.demo_data"
    )
    for new, old in zip(fresh_records, shipped_records, strict=True):
        assert new["src_img_b64"].startswith(DATA_URI) == old["src_img_b64"].startswith(DATA_URI)
        new_px = decode_image_bytes(_image_bytes(new)).tobytes()
        old_px = decode_image_bytes(_image_bytes(old)).tobytes()
        assert hashlib.sha256(new_px).digest() == hashlib.sha256(old_px).digest(), (
            f"image of {new['original_image_path']} differs: rebuild re_edit_demo.json"
        )


def test_builder_is_deterministic() -> None:
    assert build_demo.render(build_demo.build_records()) == build_demo.render(
        build_demo.build_records()
    )


def test_shipped_file_format(records: list[dict]) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert text.endswith("]\n")
    assert "\r" not in text
    assert text == json.dumps(records, indent=1, ensure_ascii=False) + "\n"
    assert SHIPPED.stat().st_size < 80_000


def test_two_records_per_category_in_order(records: list[dict]) -> None:
    assert [r["subset"] for r in records] == EXPECTED_SUBSETS
    assert list(build_demo.CATEGORIES) == EXPECTED_SUBSETS[::2]


def test_record_fields(records: list[dict]) -> None:
    for index, record in enumerate(records):
        assert set(record) == FIELDS
        assert record["difficulty"] in {"easy", "medium", "hard"}
        expected_path = f"demo/{index:05d}_{record['subset']}_{record['difficulty']}.png"
        assert record["original_image_path"] == expected_path
        assert isinstance(record["seed"], int) and not isinstance(record["seed"], bool)
        assert record["tags"] and all(isinstance(t, str) and t for t in record["tags"])
        for key in FIELDS - {"tags", "seed"}:
            assert isinstance(record[key], str) and record[key].strip(), (index, key)
        for key in ("edit_instruction", "original_description", "rationale_short"):
            assert re.search(r"[\u4e00-\u9fff]", record[key]), (index, key)
    assert len({r["seed"] for r in records}) == len(records)
    assert len({r["original_image_path"] for r in records}) == len(records)


def test_only_record_3_has_data_uri_prefix(records: list[dict]) -> None:
    prefixed = [i for i, r in enumerate(records) if r["src_img_b64"].startswith("data:")]
    assert prefixed == [3]
    assert records[3]["src_img_b64"].startswith(DATA_URI)


def test_every_image_decodes_to_256_rgb(records: list[dict]) -> None:
    pixels = set()
    for record in records:
        raw = _image_bytes(record)
        assert raw.startswith(b"\x89PNG\r\n\x1a\n")
        img = decode_image_bytes(raw)
        assert img.mode == "RGB"
        assert img.size == (256, 256)
        extrema = img.getextrema()
        assert any(lo != hi for lo, hi in extrema), "blank image"
        pixels.add(hashlib.sha256(img.tobytes()).hexdigest())
    assert len(pixels) == len(records), "two records share the same image"


def test_instructions_non_empty_and_unique(records: list[dict]) -> None:
    for key in ("edit_instruction_en", "edit_instruction"):
        values = [r[key].strip() for r in records]
        assert all(values), key
        assert len(set(values)) == len(values), key


def test_referential_circles_scene_matches_text(records: list[dict]) -> None:
    record = next(r for r in records if "circle between the red" in r["edit_instruction_en"])
    img = decode_image_bytes(_image_bytes(record))
    left, middle, right = (img.getpixel((x, 128)) for x in (56, 128, 200))
    assert left[0] > 200 and left[1] < 80 and left[2] < 80  # red
    assert middle[1] > 150 and middle[0] < 80 and middle[2] < 100  # green
    assert right[2] > 200 and right[0] < 80  # blue


def test_runs_as_script(tmp_path: Path) -> None:
    out = tmp_path / "script.json"
    script = Path(build_demo.__file__)
    subprocess.run(
        [sys.executable, str(script), str(out)], check=True, capture_output=True, timeout=300
    )
    assert out.read_bytes() == build_demo.build(tmp_path / "module.json").read_bytes()
