"""Dataset loaders: RE-Edit JSON (local and HF cache), image folders, the shipped demo."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

import reedit.data.re_edit as re_edit_mod
from reedit.data.base import BadRecord, DatasetError, make_sample_id
from reedit.data.folder import FolderDataset
from reedit.data.re_edit import ReEditDataset, decode_b64

SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")
REPO = "Yixuan-Ding-ZJU/RE-Edit"
DEMO = Path(re_edit_mod.__file__).with_name("demo") / "re_edit_demo.json"


# ---------------------------------------------------------------- helpers: images


def _encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_rgb(color=(200, 30, 40), size=(8, 6)) -> bytes:
    return _encode(Image.new("RGB", size, color))


def jpeg_rgb(color=(20, 200, 40), size=(8, 6)) -> bytes:
    return _encode(Image.new("RGB", size, color), "JPEG", quality=95)


def png_rgba() -> bytes:
    """Left column opaque red, everything else fully transparent (-> white)."""
    img = Image.new("RGBA", (4, 4), (0, 0, 255, 0))
    for y in range(4):
        img.putpixel((0, y), (255, 0, 0, 255))
    return _encode(img)


def png_palette() -> bytes:
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 10, 120, 230] + [0] * (254 * 3))
    return _encode(img)


def png_16bit() -> bytes:
    img = Image.new("I;16", (4, 4), 257 * 100)
    img.putpixel((0, 0), 65535)
    return _encode(img)


def jpeg_cmyk() -> bytes:
    return _encode(Image.new("CMYK", (6, 4), (0, 0, 0, 0)), "JPEG", quality=95)


def _exif_rotated(fmt: str) -> bytes:
    """8x4 image, left half red, right half blue, EXIF orientation 6 (display rotated 90 CW)."""
    img = Image.new("RGB", (8, 4), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 4, 4))
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(img, fmt, exif=exif.tobytes())


def b64(data: bytes, prefix: bool = False) -> str:
    text = base64.b64encode(data).decode()
    return f"data:image/png;base64,{text}" if prefix else text


# ---------------------------------------------------------------- helpers: RE-Edit files


def rec(
    subset="physical",
    path: str | None = "generated_images_2/00000_physical_medium.png",
    image: bytes | None = None,
    **fields,
) -> dict:
    out = {
        "subset": subset,
        "src_img_b64": b64(image if image is not None else png_rgb()),
        "edit_instruction_en": "Put the cup on the table.",
        "original_description_en": "A cup floating in the air.",
        "rationale_short_en": "The cup must rest on the table with a contact shadow.",
        "edit_instruction": "把杯子放在桌子上。",
        "difficulty": "medium",
        "tags": ["support"],
        "seed": 7,
    }
    if path is not None:
        out["original_image_path"] = path
    out.update(fields)
    return out


def recs(*subsets: str) -> list[dict]:
    """One good record per subset, with distinct paths."""
    return [rec(s, path=f"imgs/{i:05d}_{s}.png") for i, s in enumerate(subsets)]


def write_json(tmp_path: Path, records, name: str = "RE-Edit.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def load(path: Path, *, categories=None, limit=None, **kw):
    kw.setdefault("cache_dir", str(path.parent / "cache"))
    return ReEditDataset(path=str(path), **kw).load(categories=categories, limit=limit)


def load_error(path: Path, *, match: str = r"\d+ bad record\(s\):", **kw) -> str:
    """The message of the DatasetError that loading ``path`` raises (``match``: its gist)."""
    with pytest.raises(DatasetError, match=match) as info:
        load(path, **kw)
    return str(info.value)


# ---------------------------------------------------------------- good records


def test_good_record_maps_every_field(tmp_path: Path) -> None:
    r = rec(
        "physical",
        path="generated_images_2/00000_physical_medium.png",
        image=png_rgb((200, 30, 40)),
        edit_instruction_en="  Put the cup on the table.  ",
        original_description_en="A cup floating.",
        rationale_short_en="Contact shadow needed.",
    )
    result = load(write_json(tmp_path, [r]))
    assert result.bad_records == []
    assert result.source == str(tmp_path / "RE-Edit.json")
    (s,) = result.samples
    assert s.id == "00000_physical_medium"
    assert s.category == "physical"
    assert s.instruction == "Put the cup on the table."
    assert s.description == "A cup floating."
    assert s.rationale == "Contact shadow needed."
    assert (s.index, s.record_index) == (0, 0)
    assert s.metadata["difficulty"] == "medium"
    assert s.metadata["tags"] == ["support"]
    assert s.metadata["seed"] == 7
    assert s.metadata["edit_instruction"] == "把杯子放在桌子上。"
    assert s.metadata["original_image_path"] == "generated_images_2/00000_physical_medium.png"
    # the base64 is not kept with the sample
    assert "src_img_b64" not in s.metadata
    assert not any(isinstance(v, str) and len(v) > 200 for v in s.metadata.values())
    assert s.source_path.is_file()
    img = s.image
    assert img.mode == "RGB" and img.size == (8, 6)
    assert img.getpixel((3, 3)) == (200, 30, 40)


def test_missing_optional_texts_become_empty(tmp_path: Path) -> None:
    r = rec()
    del r["original_description_en"]
    r["rationale_short_en"] = None
    (s,) = load(write_json(tmp_path, [r])).samples
    assert (s.description, s.rationale) == ("", "")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("generated_images_2/00000_physical_medium.png", "00000_physical_medium"),
        ("00001_physical_hard.png", "00001_physical_hard"),  # no folder: .png still dropped
        ("a/b/c/00002_causal_easy.jpeg", "00002_causal_easy"),
        ("win\\dir\\00003_x.png", "00003_x"),
        ("plain_id", "plain_id"),
    ],
)
def test_ids_from_original_image_path(tmp_path: Path, path: str, expected: str) -> None:
    (s,) = load(write_json(tmp_path, [rec(path=path)])).samples
    assert s.id == expected


def test_unicode_and_space_names_are_sanitised_and_distinct(tmp_path: Path) -> None:
    paths = ["imgs/猫.png", "imgs/狗.png", "imgs/my image.png", "imgs/my_image.png", "Ünïcode.png"]
    samples = load(write_json(tmp_path, [rec(path=p) for p in paths])).samples
    ids = [s.id for s in samples]
    assert len(set(ids)) == len(paths), ids
    for i in ids:
        assert SAFE_ID.match(i), i
        assert not i.endswith(".png") and not i.startswith(".")
    assert ids[3] == "my_image"
    # stable: a second load (and the bare function) give the same ids
    again = load(write_json(tmp_path, [rec(path=p) for p in paths], "copy.json")).samples
    assert [s.id for s in again] == ids
    assert [make_sample_id(p) for p in paths] == ids


def test_no_path_gives_category_index_id(tmp_path: Path) -> None:
    records = [rec("physical", path=None), rec("causal", path="  "), rec("causal", path=None)]
    samples = load(write_json(tmp_path, records)).samples
    by_record = {s.record_index: s.id for s in samples}
    # id = <category>_<position in the file>, zero-padded
    assert by_record == {0: "physical_00000", 1: "causal_00001", 2: "causal_00002"}


def test_data_uri_prefix_is_dropped(tmp_path: Path) -> None:
    r = rec(image=png_rgb((1, 2, 3)))
    r["src_img_b64"] = b64(png_rgb((1, 2, 3)), prefix=True)
    (s,) = load(write_json(tmp_path, [r])).samples
    assert s.image.getpixel((0, 0)) == (1, 2, 3)
    assert decode_b64("data:image/jpeg;base64," + base64.b64encode(b"xy").decode()) == b"xy"
    assert decode_b64(" eHk=\n") == b"xy"


@pytest.mark.parametrize(
    ("subset", "category"),
    [
        ("物理", "physical"),
        ("环境", "environmental"),
        ("社会", "cultural"),
        ("因果", "causal"),
        ("指代", "referential"),
        ("PHYSICAL", "physical"),
        (" Cultural ", "cultural"),
        ("Referential", "referential"),
    ],
)
def test_category_aliases_and_case(tmp_path: Path, subset: str, category: str) -> None:
    (s,) = load(write_json(tmp_path, [rec(subset)])).samples
    assert s.category == category


def test_utf8_bom_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([rec()]).encode())
    assert [s.id for s in load(path).samples] == ["00000_physical_medium"]


# ---------------------------------------------------------------- image modes


def test_special_image_modes_decode_to_rgb(tmp_path: Path) -> None:
    images = {
        "jpeg": jpeg_rgb(),
        "rgba": png_rgba(),
        "palette": png_palette(),
        "sixteen": png_16bit(),
        "cmyk": jpeg_cmyk(),
        "exif_jpeg": _exif_rotated("JPEG"),
        "exif_png": _exif_rotated("PNG"),
    }
    records = [rec(path=f"{name}.png", image=data) for name, data in images.items()]
    result = load(write_json(tmp_path, records))
    assert result.bad_records == []
    got = {s.id: s.image for s in result.samples}
    assert set(got) == set(images)
    assert all(img.mode == "RGB" for img in got.values())
    assert got["rgba"].getpixel((0, 0)) == (255, 0, 0)
    assert got["rgba"].getpixel((3, 3)) == (255, 255, 255)  # transparent -> white
    assert got["palette"].getpixel((2, 2)) == (10, 120, 230)
    assert got["sixteen"].getpixel((0, 0)) == (255, 255, 255)
    assert got["sixteen"].getpixel((1, 1)) == (100, 100, 100)
    assert all(c >= 245 for c in got["cmyk"].getpixel((2, 2)))  # no ink -> white
    assert got["cmyk"].size == (6, 4)
    for name in ("exif_jpeg", "exif_png"):
        img = got[name]
        assert img.size == (4, 8), name  # rotated size
        top, bottom = img.getpixel((2, 1)), img.getpixel((2, 6))
        assert top[0] > 200 and top[2] < 60, (name, top)  # the left (red) half is now on top
        assert bottom[2] > 200 and bottom[0] < 60, (name, bottom)


# ---------------------------------------------------------------- bad records


DROP = object()  # a field to remove from the record


def _mutated(changes) -> object:
    if changes is None:
        return ["not", "a", "record"]
    r = rec("cultural", path="bad/00009.png")
    for key, value in changes.items():
        if value is DROP:
            del r[key]
        else:
            r[key] = value
    return r


BAD_KINDS = {
    "missing instruction": ({"edit_instruction_en": DROP}, "instruction", "missing or empty"),
    "empty instruction": ({"edit_instruction_en": "   "}, "instruction", "missing or empty"),
    "non-text instruction": ({"edit_instruction_en": 12}, "instruction", "expected text"),
    "bad base64": ({"src_img_b64": "not base64 !!!"}, "src_img_b64", "invalid base64"),
    "data uri no base64": ({"src_img_b64": "data:image/png,abcd"}, "src_img_b64", "data URI"),
    "missing base64": ({"src_img_b64": DROP}, "src_img_b64", "missing or empty"),
    "undecodable image": ({"src_img_b64": b64(b"not an image")}, "src_img_b64", "cannot decode"),
    "truncated png": ({"src_img_b64": b64(png_rgb()[:-30])}, "src_img_b64", "cannot decode"),
    "unknown category": ({"subset": "chemistry"}, "category", "chemistry"),
    "missing category": ({"subset": DROP}, "category", "unknown category"),
    "non-object record": (None, "record", "not a JSON object"),
}


@pytest.mark.parametrize("kind", list(BAD_KINDS))
def test_each_bad_record_kind_names_index_and_field(tmp_path: Path, kind: str) -> None:
    changes, field, text = BAD_KINDS[kind]
    records = recs("physical", "causal")
    records.insert(1, _mutated(changes))
    message = load_error(write_json(tmp_path, records))
    assert "1 bad record(s)" in message
    assert "record 1" in message and f"field '{field}'" in message, message
    assert text in message, message
    assert str(tmp_path / "RE-Edit.json") in message
    assert "on_bad_record=skip" in message
    assert "record 0" not in message and "record 2" not in message


def test_non_object_record_reports_only_that(tmp_path: Path) -> None:
    message = load_error(write_json(tmp_path, [rec(), 42]))
    assert "record 1, field 'record'" in message
    assert "field 'category'" not in message and "field 'instruction'" not in message


def test_several_bad_records_listed_in_one_error(tmp_path: Path) -> None:
    records = [
        rec("physical", path="a.png"),
        rec("physical", path="b.png", edit_instruction_en=""),
        rec("causal", path="c.png", src_img_b64="%%%"),
        rec("alchemy", path="d.png"),
        rec("causal", path="e.png"),
        "junk",
    ]
    message = load_error(write_json(tmp_path, records))
    assert "4 bad record(s)" in message
    for index, field in ((1, "instruction"), (2, "src_img_b64"), (3, "category"), (5, "record")):
        assert re.search(rf"record {index}\b.*field '{field}'", message), (index, message)
    assert "record 0" not in message and "record 4" not in message


def test_record_with_two_problems_counts_once_and_lists_both(tmp_path: Path) -> None:
    records = [rec(path="a.png"), rec("alchemy", path="b.png", edit_instruction_en=["x"])]
    message = load_error(write_json(tmp_path, records))
    assert "1 bad record(s)" in message
    assert "record 1 (b), field 'category'" in message
    assert "record 1 (b), field 'instruction': expected text" in message
    assert message.count("field 'instruction'") == 1


def test_skip_keeps_good_records_and_lists_bad(tmp_path: Path) -> None:
    records = [
        rec("physical", path="a.png"),
        rec("physical", path="b.png", edit_instruction_en=None),
        rec("causal", path="c.png", src_img_b64=b64(b"garbage")),
        rec("causal", path="d.png"),
    ]
    result = load(write_json(tmp_path, records), on_bad_record="skip")
    assert [s.id for s in result.samples] == ["a", "d"]
    # positions count every record of the category, skipped ones too (seed_mode=index stable)
    assert [s.index for s in result.samples] == [0, 1]
    assert all(isinstance(b, BadRecord) for b in result.bad_records)
    assert [(b.index, b.field, b.id) for b in result.bad_records] == [
        (1, "instruction", "b"),
        (2, "src_img_b64", "c"),
    ]
    assert "record 2 (c), field 'src_img_b64'" in str(result.bad_records[1])


def test_bad_on_bad_record_value() -> None:
    with pytest.raises(DatasetError, match="on_bad_record"):
        ReEditDataset(path="x.json", on_bad_record="ignore")


def test_id_collision_names_both_records(tmp_path: Path) -> None:
    records = [
        rec("physical", path="set_a/00007.png"),
        rec("causal", path="other.png"),
        rec("causal", path="set_b/00007.png"),
    ]
    message = load_error(write_json(tmp_path, records))
    assert "1 bad record(s)" in message
    assert re.search(r"record 2 \(00007\), field 'id'.*collides with record 0", message), message
    assert "set_b/00007.png" in message

    result = load(write_json(tmp_path, records, "skip.json"), on_bad_record="skip")
    assert [s.record_index for s in result.samples] == [0, 1]
    assert [(b.index, b.field) for b in result.bad_records] == [(2, "id")]


def test_top_level_object_is_an_error_not_zero_samples(tmp_path: Path) -> None:
    path = tmp_path / "dict.json"
    path.write_text(json.dumps({"physical": [rec()], "causal": [rec("causal")]}))
    message = load_error(path, match="expected a JSON list of records at the top level")
    assert "expected a JSON list" in message and "object" in message


@pytest.mark.parametrize(
    "text", ['[{"subset": "physical", bad json', "[", '[{"subset": "physical"}] trailing', ""]
)
def test_invalid_json_is_a_dataset_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        load(path)


def test_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset.path: no such file"):
        ReEditDataset(path=str(tmp_path / "nope.json")).load()


# ---------------------------------------------------------------- categories and limit


def test_categories_filter(tmp_path: Path) -> None:
    path = write_json(tmp_path, recs("physical", "causal", "cultural", "causal"))
    result = load(path, categories=["causal"])
    assert [s.category for s in result.samples] == ["causal", "causal"]
    assert [s.record_index for s in result.samples] == [1, 3]
    # aliases and case in the filter; the same category twice selects it once
    result = load(path, categories=["CAUSAL", "因果", "社会"])
    assert [s.record_index for s in result.samples] == [1, 3, 2]


def test_category_typo_suggests_close_match(tmp_path: Path) -> None:
    path = write_json(tmp_path, recs("physical"))
    with pytest.raises(DatasetError, match=r"unknown category 'physcal'.*Did you mean 'physical'"):
        load(path, categories=["physcal"])


def test_limit_first_n_per_category_in_file_order(tmp_path: Path) -> None:
    order = ["physical", "causal", "physical", "physical", "causal", "causal", "referential"]
    path = write_json(tmp_path, recs(*order))
    result = load(path, limit=2)
    picked = [(s.category, s.record_index, s.index) for s in result.samples]
    assert picked == [
        ("physical", 0, 0),
        ("physical", 2, 1),
        ("causal", 1, 0),
        ("causal", 4, 1),
        ("referential", 6, 0),
    ]
    # index stays the position within the category over the whole file
    full = {s.record_index: s.index for s in load(path).samples}
    assert full == {0: 0, 2: 1, 3: 2, 1: 0, 4: 1, 5: 2, 6: 0}
    one = load(path, categories=["causal"], limit=1).samples
    assert [(s.record_index, s.index) for s in one] == [(1, 0)]


@pytest.mark.parametrize("limit", [0, -3, "2", 1.5])
def test_bad_limit(tmp_path: Path, limit) -> None:
    with pytest.raises(DatasetError, match="limit"):
        load(write_json(tmp_path, recs("physical")), limit=limit)


# ---------------------------------------------------------------- the source cache


def test_source_cache_is_reused(tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = re_edit_mod.decode_b64

    def counting(value):
        calls.append(1)
        return real(value)

    monkeypatch.setattr(re_edit_mod, "decode_b64", counting)
    images = [png_rgb(), jpeg_rgb(), png_rgba()]
    path = write_json(tmp_path, [rec(path=f"{i}.png", image=d) for i, d in enumerate(images)])
    cache = tmp_path / "my-cache"

    first = ReEditDataset(path=str(path), cache_dir=str(cache)).load().samples
    assert len(calls) == 3
    assert all(s.source_path.is_relative_to(cache) for s in first)
    stamps = {s.id: s.source_path.stat().st_mtime_ns for s in first}

    calls.clear()
    second = ReEditDataset(path=str(path), cache_dir=str(cache)).load().samples
    assert calls == []  # no base64 decoded again
    assert [s.source_path for s in second] == [s.source_path for s in first]
    assert {s.id: s.source_path.stat().st_mtime_ns for s in second} == stamps
    assert [s.image.tobytes() for s in second] == [s.image.tobytes() for s in first]
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name]

    # a changed file is a new dataset version: decoded afresh
    path.write_text(json.dumps([rec(path="0.png", image=png_rgb((9, 9, 9)))]))
    calls.clear()
    (fresh,) = ReEditDataset(path=str(path), cache_dir=str(cache)).load().samples
    assert len(calls) == 1
    assert fresh.image.getpixel((0, 0)) == (9, 9, 9)


def test_default_cache_is_reedit_cache_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("REEDIT_CACHE", str(tmp_path / "env-cache"))
    (s,) = ReEditDataset(path=str(write_json(tmp_path, [rec()]))).load().samples
    assert s.source_path.is_relative_to(tmp_path / "env-cache")


# ---------------------------------------------------------------- Hugging Face


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch) -> Path:
    """An offline, empty HF cache (the constants are read at import, so patch them too)."""
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_hf_offline_without_copy_explains_download(hf_cache: Path) -> None:
    ds = ReEditDataset(path=None, repo_id=REPO, filename="RE-Edit.json")
    with pytest.raises(
        DatasetError, match=r"RE-Edit\.json of the Hugging Face dataset repo"
    ) as info:
        ds.load()
    message = str(info.value)
    assert f"hf download {REPO} RE-Edit.json --repo-type dataset" in message
    assert "dataset.path" in message


def test_hf_cached_copy_loads_offline(hf_cache: Path, tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = hf_cache / "datasets--Yixuan-Ding-ZJU--RE-Edit"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    write_json(snapshot, recs("physical", "cultural"))

    ds = ReEditDataset(path=None, repo_id=REPO, filename="RE-Edit.json")
    result = ds.load()
    assert [s.category for s in result.samples] == ["physical", "cultural"]
    assert Path(result.source) == snapshot / "RE-Edit.json"
    assert ds.resolve() == snapshot / "RE-Edit.json"


def test_no_path_and_no_repo() -> None:
    with pytest.raises(DatasetError, match="repo_id"):
        ReEditDataset(path=None, repo_id="", filename="RE-Edit.json").load()


# ---------------------------------------------------------------- folder loader


def _folder(tmp_path: Path, lines: list) -> Path:
    root = tmp_path / "folder"
    (root / "imgs").mkdir(parents=True)
    (root / "imgs" / "cup.png").write_bytes(png_rgb((5, 6, 7)))
    (root / "imgs" / "tree.jpg").write_bytes(jpeg_rgb())
    (root / "rgba.png").write_bytes(png_rgba())
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    (root / "samples.jsonl").write_text(text + "\n", encoding="utf-8")
    return root


def _line(image: str, category: str = "physical", **kw) -> dict:
    return {"image": image, "instruction": f"edit {image}", "category": category, **kw}


def test_folder_good_lines(tmp_path: Path) -> None:
    root = _folder(
        tmp_path,
        [
            _line("imgs/cup.png", description="a cup", rationale="gravity", difficulty="hard"),
            "",
            _line("imgs/tree.jpg", "Environmental", id="tree 01", tags=["x"]),
            _line("rgba.png", "因果"),
        ],
    )
    result = FolderDataset(root=str(root), cache_dir=str(tmp_path / "c")).load()
    assert result.bad_records == []
    a, b, c = result.samples  # grouped by category order: physical, environmental, causal
    assert (a.id, a.category, a.instruction) == ("cup", "physical", "edit imgs/cup.png")
    assert (a.description, a.rationale) == ("a cup", "gravity")
    assert a.metadata == {"difficulty": "hard"}
    assert a.image.getpixel((0, 0)) == (5, 6, 7)
    assert b.id == make_sample_id("tree 01") and SAFE_ID.match(b.id)
    assert b.category == "environmental" and b.metadata == {"tags": ["x"]}
    assert (b.record_index, c.record_index) == (1, 2)  # blank lines are not records
    assert (c.id, c.category) == ("rgba", "causal")
    assert c.image.getpixel((3, 3)) == (255, 255, 255)


def test_folder_bad_lines(tmp_path: Path) -> None:
    root = _folder(
        tmp_path,
        [
            _line("imgs/cup.png"),
            _line("imgs/missing.png"),
            "{not json",
            _line("imgs/tree.jpg", "physics"),
            {"instruction": "no image", "category": "causal"},
        ],
    )
    with pytest.raises(DatasetError, match=r"4 bad record\(s\):") as info:
        FolderDataset(root=str(root), cache_dir=str(tmp_path / "c")).load()
    message = str(info.value)
    assert "4 bad record(s)" in message
    assert re.search(r"record 1 \(missing\), field 'image': image file not found", message)
    assert "record 2, field 'line': not JSON" in message
    assert "field 'category'" not in message.split("record 2")[1].split("record 3")[0]
    assert re.search(r"record 3 .*field 'category'", message)
    assert re.search(r"record 4 .*field 'image': missing or empty", message)

    result = FolderDataset(
        root=str(root), on_bad_record="skip", cache_dir=str(tmp_path / "c")
    ).load()
    assert [s.id for s in result.samples] == ["cup"]
    assert [(b.index, b.field) for b in result.bad_records] == [
        (1, "image"),
        (2, "line"),
        (3, "category"),
        (4, "image"),
    ]


def test_folder_duplicate_stems_collide(tmp_path: Path) -> None:
    root = _folder(tmp_path, [_line("imgs/cup.png"), _line("imgs/cup.png", "causal")])
    with pytest.raises(DatasetError, match=r"record 1 \(cup\), field 'id'.*collides with record 0"):
        FolderDataset(root=str(root), cache_dir=str(tmp_path / "c")).load()


def test_folder_without_index(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="samples.jsonl"):
        FolderDataset(root=str(tmp_path)).load()


# ---------------------------------------------------------------- demo


def test_demo_dataset_loads() -> None:
    result = ReEditDataset(path=str(DEMO)).load()
    assert result.bad_records == []
    assert len(result.samples) == 10
    counts: dict[str, int] = {}
    for s in result.samples:
        counts[s.category] = counts.get(s.category, 0) + 1
        assert s.instruction and s.description and s.rationale
        assert SAFE_ID.match(s.id)
    assert counts == dict.fromkeys(
        ["physical", "environmental", "cultural", "causal", "referential"], 2
    )
    assert len({s.id for s in result.samples}) == 10
    assert result.samples[0].image.mode == "RGB"
    assert sorted({s.index for s in result.samples}) == [0, 1]


def test_ids_collide_case_insensitively_and_with_a_bad_record(tmp_path: Path) -> None:
    records = [
        rec("physical", path="Cat.png"),
        rec("physical", path="cat.png"),
        rec("causal", path="dog.png", edit_instruction_en=""),
        rec("causal", path="x/dog.png"),
    ]
    message = load_error(write_json(tmp_path, records))
    assert "record 1" in message and "collides with record 0" in message
    assert "record 3" in message and "collides with record 2" in message


def test_second_load_of_an_unchanged_file_uses_the_index(tmp_path: Path, monkeypatch) -> None:
    import os

    from reedit.data.re_edit import ReEditDataset

    records = [rec("physical", path="a.png"), rec("causal", path="b.png", edit_instruction_en="")]
    path = write_json(tmp_path, records)
    first = load(path, on_bad_record="skip")

    def no_parsing(self):
        raise AssertionError("parsed the file again")

    with monkeypatch.context() as m:
        m.setattr(ReEditDataset, "records", no_parsing)
        again = load(path, on_bad_record="skip")
    assert [(s.id, s.index, s.instruction, s.source_path) for s in again.samples] == [
        (s.id, s.index, s.instruction, s.source_path) for s in first.samples
    ]
    assert again.bad_records == first.bad_records and again.samples[0].image.size == (8, 6)
    # a changed file is read again
    records[1]["edit_instruction_en"] = "now fine"
    path.write_text(json.dumps(records))
    os.utime(path, ns=(1, 1))
    assert [s.id for s in load(path).samples] == ["a", "b"]
