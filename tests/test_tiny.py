"""The tiny random-weight pipelines of ``reedit.tiny``: real diffusers classes, built offline."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from reedit.testing import pipelines as tiny

SMALL = 64  # output side for the edits here (Qwen still encodes its input at ~1 MP)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _load(name: str, folder: Path):
    import diffusers
    import torch

    cls = getattr(diffusers, tiny.PIPELINES[name].pipeline_class)
    pipe = cls.from_pretrained(folder, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _edit(name: str, pipe, seed: int, **extra):
    import numpy as np
    import torch
    from PIL import Image

    image = Image.new("RGB", (64, 64), (40, 120, 200))
    kwargs = {
        "image": image,
        "prompt": "make it red",
        "num_inference_steps": 2,
        "generator": torch.Generator().manual_seed(seed),
        "height": SMALL,
        "width": SMALL,
    }
    if name.startswith("qwen"):
        kwargs.update(negative_prompt=" ", true_cfg_scale=1.0)
    if name == "flux_kontext":
        kwargs.update(max_area=SMALL * SMALL, _auto_resize=False)
    kwargs.update(extra)
    with torch.inference_mode():
        out = pipe(**kwargs).images[0]
    return out, np.asarray(out)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {name: tiny.build(name, root / name, seed=0) for name in tuple(tiny.PIPELINES)}


@pytest.mark.parametrize("name", tuple(tiny.PIPELINES))
def test_build_reload_and_edit(name, built, tmp_path):
    import numpy as np
    from PIL import Image

    folder = built[name]
    assert tiny.is_complete(folder)
    assert (folder / "model_index.json").is_file()
    assert not list(folder.parent.glob(f".{name}.tmp-*")), "temporary build folder left behind"
    size = sum(len(b) for b in _files(folder).values())
    assert 100_000 < size < 2_000_000, size

    pipe = _load(name, folder)
    assert type(pipe).__name__ == tiny.PIPELINES[name].pipeline_class
    for module in pipe.components.values():
        if hasattr(module, "training"):
            assert not module.training

    out, a = _edit(name, pipe, seed=0)
    assert isinstance(out, Image.Image)
    assert out.mode == "RGB"
    assert out.size == (SMALL, SMALL)

    _, same = _edit(name, pipe, seed=0)
    assert np.array_equal(a, same), "same generator seed gave different pixels"
    _, other = _edit(name, pipe, seed=1)
    assert not np.array_equal(a, other), "a different generator seed gave the same pixels"
    _, prompted = _edit(name, pipe, seed=0, prompt="add snow on the roof")
    assert not np.array_equal(a, prompted), "another prompt gave the same pixels"

    # Building twice with the same seed gives byte-identical folders; another seed other weights.
    again = tiny.build(name, tmp_path / "again", seed=0)
    assert _files(again) == _files(folder)
    reseeded = tiny.build(name, tmp_path / "seed1", seed=1)
    _, b = _edit(name, _load(name, reseeded), seed=0)
    assert not np.array_equal(a, b), "a different build seed gave the same pixels"


@pytest.mark.parametrize("name", ["qwen_image_edit", "qwen_image_edit_2511"])
def test_qwen_follows_cfg_and_input_image(name, built):
    import numpy as np
    from PIL import Image

    pipe = _load(name, built[name])
    _, plain = _edit(name, pipe, seed=0)
    out, cfg = _edit(name, pipe, seed=0, true_cfg_scale=4.0)
    assert out.size == (SMALL, SMALL)
    assert not np.array_equal(cfg, plain), "true_cfg_scale=4 gave the same pixels as 1"
    _, red = _edit(name, pipe, seed=0, image=Image.new("RGB", (64, 64), (220, 20, 20)))
    assert not np.array_equal(red, plain), "another input image gave the same pixels"


def test_plus_takes_several_images(built):
    from PIL import Image

    pipe = _load("qwen_image_edit_2511", built["qwen_image_edit_2511"])
    second = Image.new("RGB", (96, 64), (200, 30, 30))
    out, _ = _edit("qwen_image_edit_2511", pipe, seed=0, image=[second, second])
    assert out.size == (SMALL, SMALL)


def test_configs_use_the_tokenizer_ids(built):
    import json

    folder = built["qwen_image_edit"]
    cfg = json.loads((folder / "text_encoder" / "config.json").read_text())
    vocab = json.loads((folder / "tokenizer" / "tokenizer.json").read_text())
    ids = dict(vocab["model"]["vocab"])
    ids.update({t["content"]: t["id"] for t in vocab["added_tokens"]})
    assert cfg["image_token_id"] == ids["<|image_pad|>"]
    assert cfg["video_token_id"] == ids["<|video_pad|>"]
    assert cfg["vision_start_token_id"] == ids["<|vision_start|>"]
    assert cfg["vision_end_token_id"] == ids["<|vision_end|>"]
    assert cfg["text_config"]["vocab_size"] == len(ids)
    plus = json.loads((built["qwen_image_edit_2511"] / "transformer" / "config.json").read_text())
    assert plus["zero_cond_t"] is True
    flux2 = json.loads((built["flux2"] / "text_encoder" / "config.json").read_text())
    assert flux2["text_config"]["num_hidden_layers"] >= 30  # hidden states 10, 20, 30 are read
    assert (built["flux2"] / "tokenizer" / "chat_template.jinja").is_file()


def test_tiny_dir_layout(tmp_path, monkeypatch):
    assert tiny.tiny_dir("flux2", tmp_path) == tmp_path / "tiny" / f"flux2-v{tiny.VERSION}"
    monkeypatch.setenv("REEDIT_CACHE", str(tmp_path / "cache"))
    assert tiny.tiny_dir("flux2") == tmp_path / "cache" / "tiny" / f"flux2-v{tiny.VERSION}"
    monkeypatch.delenv("REEDIT_CACHE")
    assert tiny.tiny_dir("flux2") == Path.home() / ".cache" / "reedit" / "tiny" / "flux2-v1"
    with pytest.raises(ValueError, match="unknown tiny pipeline"):
        tiny.tiny_dir("nope")
    with pytest.raises(ValueError, match="unknown tiny pipeline"):
        tiny.build("nope", tmp_path / "x")


def test_ensure_builds_once(tmp_path, monkeypatch):
    folder = tiny.ensure("flux_kontext", root=tmp_path)
    assert folder == tiny.tiny_dir("flux_kontext", tmp_path)
    marker = folder / tiny.MARKER
    assert marker.is_file()
    before = marker.stat().st_mtime_ns

    build = tiny.build

    def no_rebuild(*args, **kwargs):
        raise AssertionError("ensure rebuilt a complete folder")

    monkeypatch.setattr(tiny, "build", no_rebuild)
    assert tiny.ensure("flux_kontext", root=tmp_path) == folder
    assert marker.stat().st_mtime_ns == before

    # An edited recipe (another source fingerprint) is rebuilt even without a VERSION bump.
    monkeypatch.setattr(tiny, "build", build)
    monkeypatch.setattr(tiny, "_fingerprint", lambda: "edited")
    assert tiny.ensure("flux_kontext", root=tmp_path) == folder
    assert '"recipe": "edited"' in marker.read_text()
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]


def test_losing_builder_keeps_the_winners_folder(tmp_path):
    path = tmp_path / "kontext"
    tiny.build("flux_kontext", path, seed=0)
    marker = path / tiny.MARKER
    before = marker.stat().st_mtime_ns
    # Same recipe and seed already in place (a concurrent builder won): it is kept as is.
    assert tiny.build("flux_kontext", path, seed=0) == path
    assert marker.stat().st_mtime_ns == before
    # Another seed, or an incomplete folder, is replaced.
    tiny.build("flux_kontext", path, seed=3)
    assert '"seed": 3' in marker.read_text()
    marker.unlink()
    tiny.build("flux_kontext", path, seed=0)
    assert '"seed": 0' in marker.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kontext"]


def test_concurrent_builders(tmp_path):
    path = tmp_path / "flux2"
    results, errors = [], []

    def work():
        try:
            results.append(tiny.build("flux2", path, seed=0))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert results == [path, path]
    assert tiny.is_complete(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flux2"]


def test_import_is_light():
    code = (
        "import reedit.testing.pipelines, sys; assert 'torch' not in sys.modules, 'torch imported'"
    )
    for heavy in ("diffusers", "transformers", "tokenizers"):
        code += f"; assert {heavy!r} not in sys.modules, {heavy!r}"
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env, timeout=60)
