"""`python -m reedit.editrefine`: one image through edit -> critique -> refine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import TEST_CONF, reedit_env
from PIL import Image

from reedit.records import RecordStore


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "cat.png"
    Image.new("RGBA", (128, 96), (255, 128, 0, 255)).save(path)
    return path


def tool(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "reedit.editrefine", *args],
        cwd=cwd,
        env=reedit_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def scene(tmp_path):
    """A drawn scene like those the trained tiny refiner was trained on (it calls it a picture)."""
    import random

    from reedit.testing.trained import scene as draw

    path = tmp_path / "scene.png"
    draw(random.Random(3), (256, 256)).save(path)
    return path


def test_writes_primary_refined_reasoning_and_re_edit(tmp_path, scene):
    """The real tiny models: identity keeps the scene, the trained refiner asks to polish it,
    the tiny FLUX.2 executor re-edits."""
    out = tmp_path / "out"
    proc = tool(
        f"image={scene}",
        "instruction=Move the lamp to the left",
        "model=identity",
        "refiner=tiny_qwen25_vl_refiner",
        "executor=tiny_flux2",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    critique = json.loads((out / "critique.json").read_text())
    assert critique["status"] == "ok" and critique["cot"] and critique["raw"]
    assert critique["re_edit"] == ["Improve the overall image quality."]
    result = json.loads((out / "result.json").read_text())
    assert result["executor_instructions"] == ["Improve the overall image quality."]
    for name in ("primary.png", "refined.png"):
        with Image.open(out / name) as img:
            assert img.size == (256, 256) and img.mode == "RGB"
    with Image.open(out / "primary.png") as a, Image.open(scene) as b:
        assert a.tobytes() == b.convert("RGB").tobytes()  # identity
    with Image.open(out / "primary.png") as a, Image.open(out / "refined.png") as b:
        assert a.tobytes() != b.tobytes()  # re-edited by the executor
    assert "re-edit: Improve the overall image quality." in proc.stderr


def test_tiny_models_and_an_unusable_critique(tmp_path, picture):
    out = tmp_path / "out"
    proc = tool(
        f"image={picture}",
        "instruction=Make it blue",
        "model=tiny_flux2",
        "executor=tiny_flux2",
        "refiner=tiny_qwen25_vl",
        "refiner.retries=0",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    critique = json.loads((out / "critique.json").read_text())
    assert critique["status"] == "unscored" and len(critique["raw"]) == 1
    assert (out / "primary.png").is_file() and not (out / "refined.png").exists()
    assert "no refinement" in proc.stderr


def test_missing_image_is_a_clear_error(tmp_path):
    proc = tool(
        f"hydra.searchpath=[{TEST_CONF}]",
        f"image={tmp_path}/none.png",
        "instruction=x",
        "refiner=scripted",
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "image: no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sequential_refinement_loads_the_executor_once(tmp_path, picture):
    proc = tool(
        f"hydra.searchpath=[{TEST_CONF}]",
        f"image={picture}",
        "instruction=x",
        "refiner=scripted",
        "refine.mode=sequential",
        f"hydra.run.dir={tmp_path}/out",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert len(result["executor_instructions"]) == 2  # two steps ...
    assert proc.stderr.count("loading editor IdentityEditor") == 2  # ... model + executor once


def test_a_model_that_cannot_load_is_a_clear_error(tmp_path, picture):
    (tmp_path / "not_a_pipeline").mkdir()
    proc = tool(
        f"hydra.searchpath=[{TEST_CONF}]",
        f"image={picture}",
        "instruction=x",
        "model=tiny_flux2",
        f"model.path={tmp_path}/not_a_pipeline",
        "refiner=scripted",
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "model: loading reedit.models.editors.flux2.Flux2Editor failed" in proc.stderr
    assert "not a diffusers pipeline folder" in proc.stderr


def test_every_missing_path_is_reported_at_once_before_anything_runs(tmp_path, picture):
    """A missing editor path and a missing refiner path (and a missing image) in one message;
    the failed start leaves no run folder behind."""
    proc = tool(
        f"image={tmp_path}/no_such.png",
        "instruction=x",
        "model=qwen_image_edit",
        f"model.path={tmp_path}/no_editor",
        "refiner=editrefine",
        f"refiner.vlm.path={tmp_path}/no_refiner",
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if "ERROR" in x]
    assert "3 problems" in line
    for key in ("image: no such file", "model.path: no such folder", "refiner.vlm.path: no such"):
        assert key in line
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.log"))


def test_the_tool_is_a_one_sample_run_with_the_seeds_of_a_run_of_that_image(tmp_path, scene):
    """+experiment=demo composes with the tool; the tool and a run of a folder dataset holding the
    same image (its id: the file stem) make the same edits, records and layout."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "lamp.png").write_bytes(scene.read_bytes())
    line = {"image": "lamp.png", "instruction": "Move the lamp to the left", "category": "causal"}
    (data / "samples.jsonl").write_text(json.dumps(line) + "\n")
    run_dir = tmp_path / "run"
    args = ["+experiment=demo", "dataset=folder", f"dataset.root={data}", f"run_dir={run_dir}"]
    proc = subprocess.run(
        [sys.executable, "-m", "reedit", *args, "stages=[edit,analyze,refine]"],
        cwd=tmp_path,
        env=reedit_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "tool"
    proc = tool(
        "+experiment=demo",
        f"image={data / 'lamp.png'}",
        "instruction=Move the lamp to the left",
        "category=causal",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    images = run_dir / "images" / "causal" / "lamp"
    assert (out / "images" / "causal" / "lamp" / "primary.png").read_bytes() == (
        images / "primary.png"
    ).read_bytes()
    assert (out / "primary.png").read_bytes() == (images / "primary.png").read_bytes()
    assert (out / "refined.png").read_bytes() == (images / "refined.png").read_bytes()
    for stage in ("edit", "analyze", "refine"):
        (mine,) = RecordStore(out, stage).load().values()
        (theirs,) = RecordStore(run_dir, stage).load().values()
        for volatile in ("time", "seconds", "input"):  # `input`: a path inside each folder
            mine.pop(volatile, None), theirs.pop(volatile, None)
        assert mine == theirs, stage
    critique = json.loads((out / "critique.json").read_text())
    assert critique["status"] == "ok" and critique["re_edit"]


def test_a_failed_critique_keeps_what_was_made_and_resumes_in_its_folder(tmp_path, picture):
    fail = tmp_path / "fail.txt"
    fail.write_text("Make it blue")
    out = tmp_path / "out"
    args = (
        f"hydra.searchpath=[{TEST_CONF}]",
        f"image={picture}",
        "instruction=Make it blue",
        "refiner=scripted",
        f"refiner.vlm.fail_file={fail}",
        "refiner.retries=0",
    )
    proc = tool(*args, f"hydra.run.dir={out}", cwd=tmp_path)
    assert proc.returncode == 2 and "analyze: 1 of 1 units failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "primary.png").is_file() and not (out / "refined.png").exists()
    assert json.loads((out / "critique.json").read_text())["status"] == "error"
    assert json.loads((out / "result.json").read_text())["critique"]["status"] == "error"

    fail.unlink()  # the cause is fixed; the advice printed is followed
    proc = tool(*args, f"run_dir={out}", "retry_errors=true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "critique.json").read_text())["status"] == "ok"
    assert (out / "refined.png").is_file()
    assert "edit: nothing to do" in proc.stderr  # the primary edit was not made again
    assert not (tmp_path / "outputs").exists()  # no second folder
