"""DreamOmni2 on its repository's own code (``REEDIT_EXTERNAL``/DreamOmni2): the
``DreamOmni2Pipeline`` and ``utils.vprocess`` of the snapshot, tiny FLUX.1-Kontext-shaped weights, a
diffusers-format edit LoRA and tiny Qwen2.5-VL rewriters (``tests/tiny_external/dreamomni2.py``), in
a worker in the model's own venv (the main env's transformers and diffusers, plus peft).

The rewriter decides what can be checked: the random-weight VLM never answers ``<gen>...</gen>``,
so a run with it must end in one error record per sample, each quoting the answer, and no image;
the image checks (seeds, sizes, details) use the same model class trained for a few seconds to
answer ``<gen>`` + instruction + ``</gen>``, so that they run the official flow, rewrite included.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import reedit_env
from external import external, model_env, tiny_model

pytestmark = pytest.mark.external

PIP = ["--no-deps", "peft==0.21.2"]  # peft's own dependencies are the main env's
FIRST = "00000_physical_easy"  # the demo's first physical sample (256x256)


@pytest.fixture(scope="module")
def repo() -> Path:
    return external("DreamOmni2")


@pytest.fixture(scope="module")
def python(repo) -> Path:
    return model_env("dreamomni2", pip=PIP)


@pytest.fixture(scope="module")
def tiny(python, repo) -> Path:
    return tiny_model(python, "dreamomni2", repo=repo)


def weights(tiny: Path, vlm: str = "vlm_gen") -> tuple[str, ...]:
    return (
        f"model.path={tiny / 'kontext'}",
        f"model.lora_path={tiny / 'edit_lora'}",
        f"model.vlm_path={tiny / vlm}",
        "model.dtype=float32",
    )


def reedit(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "reedit", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=reedit_env(), timeout=900)


def run(tmp: Path, python: Path, repo: Path, tiny: Path, *extra: str, vlm: str = "vlm_gen"):
    """A demo run of the physical category (``limit`` samples) in the model's worker; its
    records by sample id, and the process."""
    proc = reedit(
        "dataset=demo",
        "categories=[physical]",
        "refiner=none",
        "judge=none",
        "progress=false",
        f"run_dir={tmp}",
        "model=dreamomni2",
        *weights(tiny, vlm),
        "model.num_inference_steps=2",
        "model.runtime.conda=null",
        f"+model.runtime.python={python}",
        f"model.runtime.repo_path={repo}",
        *extra,
    )
    path = tmp / "records" / "edit.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return {r["sample_id"]: r for r in map(json.loads, lines)}, proc


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, python, repo, tiny):
    folder = tmp_path_factory.mktemp("dreamomni2") / "a"
    records, proc = run(folder, python, repo, tiny, "limit=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder, records


def test_an_edit_runs_the_rewrite_then_the_pipeline_with_the_records_it_needs(first_run):
    folder, records = first_run
    assert list(records) == [FIRST]
    for rec in records.values():
        assert rec["status"] == "ok", rec.get("error")
        image = folder / rec["image"]
        assert image.is_file()
        from PIL import Image

        with Image.open(image) as img:  # 256x256 demo input: the square Kontext resolution
            assert img.size == (1024, 1024) == tuple(rec["size"])
        info, details = rec["info"], rec["details"]
        assert info["runtime"] == "worker" and info["pipeline"] == "DreamOmni2Pipeline"
        assert "nearest its aspect ratio" in info["size_policy"]
        assert info["resize_output_to_input"] is False
        answer = details["vlm_answer"]  # the trained rewriter's own words, parsed strictly
        assert answer.startswith("<gen>") and answer.endswith("</gen>")
        assert details["prompt"] == answer[len("<gen>") : -len("</gen>")].strip() != ""
        assert details["kontext_input"] == [1024, 1024]


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_image(
    first_run, tmp_path, python, repo, tiny
):
    folder, records = first_run
    again, proc = run(tmp_path / "b", python, repo, tiny, "limit=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert again[FIRST]["seed"] == records[FIRST]["seed"]
    first = (folder / records[FIRST]["image"]).read_bytes()
    assert (tmp_path / "b" / again[FIRST]["image"]).read_bytes() == first

    # seed=1, with the output resized back to the input (256x256): another image
    other, proc = run(
        tmp_path / "c", python, repo, tiny, "limit=1", "seed=1", "model.resize_output_to_input=true"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = other[FIRST]
    assert rec["seed"] != records[FIRST]["seed"] and rec["info"]["resize_output_to_input"]
    from PIL import Image

    with (
        Image.open(tmp_path / "c" / rec["image"]) as img,
        Image.open(folder / records[FIRST]["image"]) as a,
    ):
        assert img.size == (256, 256) == tuple(rec["size"])
        same_size = a.resize((256, 256), Image.Resampling.LANCZOS)
        assert img.convert("RGB").tobytes() != same_size.convert("RGB").tobytes()


def test_an_answer_that_is_not_exactly_gen_is_each_samples_error_quoting_it(
    tmp_path, python, repo, tiny
):
    records, proc = run(
        tmp_path / "e", python, repo, tiny, "limit=2", "model.max_new_tokens=32", vlm="vlm"
    )
    assert proc.returncode != 0
    assert "2 of 2 units failed" in proc.stderr  # the run says so
    assert sorted(records) == [FIRST, "00001_physical_medium"]
    for sid, rec in records.items():
        assert rec["status"] == "error" and rec["error_type"] == "ValueError"
        assert rec["error"].startswith(f"sample {sid}: the DreamOmni2 VLM's answer is not exactly")
        answer = ast.literal_eval(rec["error"].split("(nothing is edited): ", 1)[1])
        assert isinstance(answer, str) and "<gen>" not in answer
        assert "image" not in rec and rec["details"] == {"vlm_answer": answer}  # all of it
    assert not list((tmp_path / "e" / "images").rglob("*.png"))


@pytest.mark.parametrize(
    ("answer", "prompt"),
    [
        ("<gen>a red lamp</gen>", "a red lamp"),
        ("<gen> a red lamp </gen>", "a red lamp"),  # what inference_edit.py's [6:-7] expects
        ("\n <gen>\na red lamp\n</gen>\n", "a red lamp"),
        ("<gen>a red lamp", None),  # cut off at max_new_tokens
        ("Sure! <gen>a red lamp</gen>", None),
        ("<gen>a red lamp</gen> Done.", None),
        ("<gen>a</gen><gen>b</gen>", None),
        ("<gen>  </gen>", None),
        ("a red lamp", None),
        ("", None),
    ],
)
def test_the_parse_is_strict(answer, prompt):
    from reedit.models.editors.dreamomni2 import gen_prompt

    if prompt is not None:
        assert gen_prompt(answer, "s1") == prompt
        return
    with pytest.raises(
        ValueError, match=r"the DreamOmni2 VLM's answer is not exactly one non-empty <gen>"
    ) as err:
        gen_prompt(answer, "s1")
    assert str(err.value).startswith("sample s1: ") and str(err.value).endswith(repr(answer))


SPY = r"""
import inspect, json, sys
import diffusers, peft, torch, transformers
from PIL import Image
from dreamomni2.pipeline_dreamomni2 import DreamOmni2Pipeline
from transformers import Qwen2_5_VLForConditionalGeneration
from utils import vprocess
from reedit.models.base import EditRequest
from reedit.models.editors.dreamomni2 import DreamOmni2Editor, kontext_size

settings, source_path = json.loads(sys.argv[1]), sys.argv[2]
seen = {}

def spy(owner, name, steps=None):
    real = getattr(owner, name)
    signature = inspect.signature(real)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs).arguments  # fails on a name it does not take
        flat = {}
        for key, value in bound.items():
            if signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
                flat.update(value)
            elif key != "self":
                flat[key] = value
        seen[name] = flat
        if steps:  # the mapping is what is checked; one step keeps the call short
            kwargs["num_inference_steps"] = steps
        return real(*args, **kwargs)
    setattr(owner, name, wrapper)

spy(DreamOmni2Pipeline, "__call__", steps=1)
spy(DreamOmni2Pipeline, "load_lora_weights")
spy(DreamOmni2Pipeline, "set_adapters")
spy(Qwen2_5_VLForConditionalGeneration, "generate")
spy(vprocess, "process_vision_info")
editor = DreamOmni2Editor(**settings)
source = Image.open(source_path).convert("RGB")
(result,) = editor.edit([EditRequest("k", "s", "physical", source, "Make the lamp red.", 1234)])
call, gen = seen["__call__"], seen["generate"]
lora, adapters = seen["load_lora_weights"], seen["set_adapters"]
(message,) = seen["process_vision_info"]["conversations"]
sizes = [(256, 256), (640, 480), (480, 640), (1000, 300), (300, 1000), (1920, 1080), (1, 1000)]
print(json.dumps({
    "ok": result.ok, "error": result.error, "details": result.details,
    "call": {k: v for k, v in call.items() if k not in ("images", "generator")},
    "images": [list(i.size) for i in call["images"]],
    "source_is_resizeinput": call["images"][0].tobytes() == vprocess.resizeinput(source).tobytes(),
    "generator_seed": call["generator"].initial_seed(),
    "generate": {k: gen[k] for k in ("do_sample", "max_new_tokens")},
    "vlm_message": [[part["type"], part.get("text")] for part in message["content"]],
    "vlm_image_is_source": message["content"][0]["image"] is source,
    "lora": [lora["pretrained_model_name_or_path_or_dict"], lora["adapter_name"]],
    "adapters": [adapters["adapter_names"], adapters["adapter_weights"]],
    "active": editor.pipe.get_active_adapters(),
    "dtypes": [str(editor.pipe.transformer.dtype), str(editor.vlm.dtype)],
    "sizes": [[list(kontext_size(w, h, vprocess.PREFERRED_KONTEXT_RESOLUTIONS)),
               list(vprocess.resizeinput(Image.new("RGB", (w, h))).size)] for w, h in sizes],
    "modules": [m.__file__ for m in (transformers, diffusers)],
    "versions": {m.__name__: m.__version__ for m in (transformers, diffusers, peft)},
}))
"""


def test_the_yamls_official_values_reach_the_real_pipeline_and_vlm(
    compose, tmp_path, python, repo, tiny
):
    from omegaconf import OmegaConf
    from PIL import Image

    cfg = compose("model=dreamomni2", *weights(tiny), f"model.runtime.repo_path={repo}")
    settings = OmegaConf.to_container(cfg.model, resolve=True)
    yaml = dict(settings)
    del settings["_target_"], settings["runtime"]  # in process here: the spy patches classes
    source = tmp_path / "in.png"
    Image.new("RGB", (640, 480), (200, 40, 30)).save(source)  # 4:3 -> the 1184x880 resolution
    env = reedit_env(PYTHONPATH=f"{repo}:{Path(__file__).resolve().parents[1]}")
    proc = subprocess.run(
        [python, "-c", SPY, json.dumps(settings), str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ok"], out["error"]
    official = (yaml["num_inference_steps"], yaml["guidance_scale"], yaml["max_area"])
    assert official == (30, 3.5, 1024**2)  # inference_edit.py's pipe(...); the pipeline default
    assert out["call"] == {
        "prompt": out["details"]["prompt"],  # the rewrite, not the instruction
        "height": 880,  # height=source_imgs[0].height: the 4:3 Kontext resolution
        "width": 1184,
        "num_inference_steps": yaml["num_inference_steps"],
        "guidance_scale": yaml["guidance_scale"],
        "max_area": yaml["max_area"],
    }
    assert out["images"] == [[1184, 880]] and out["source_is_resizeinput"]
    assert out["generator_seed"] == 1234  # the official script passes none
    assert (yaml["max_new_tokens"], yaml["instruction_suffix"]) == (4096, " It is editing task.")
    assert out["generate"] == {"do_sample": False, "max_new_tokens": yaml["max_new_tokens"]}
    text = "Make the lamp red." + yaml["instruction_suffix"]
    assert out["vlm_message"] == [["image", None], ["text", text]] and out["vlm_image_is_source"]
    assert yaml["lora_weight"] == 1.0  # set_adapters(["edit"], adapter_weights=[1])
    assert out["lora"] == [yaml["lora_path"], "edit"]
    assert out["adapters"] == [["edit"], [yaml["lora_weight"]]] and out["active"] == ["edit"]
    assert out["dtypes"] == ["torch.float32", "torch.float32"]  # model.dtype, both models
    assert all(ours == theirs for ours, theirs in out["sizes"]), out["sizes"]
    # the worker's interpreter: the main env's transformers and diffusers (no pins), plus peft
    import diffusers
    import transformers

    assert out["versions"] == {
        "transformers": transformers.__version__,
        "diffusers": diffusers.__version__,
        "peft": "0.21.2",
    }
    # transformers 5 (the main env's is not pinned: 5.24 when this was written, 5.25 later)
    assert int(transformers.__version__.split(".")[0]) >= 5
    main_site = Path(sys.modules["transformers"].__file__).resolve().parents[1]
    assert all(Path(m).resolve().is_relative_to(main_site) for m in out["modules"])


def test_missing_weights_and_a_missing_clone_are_named(tmp_path, python, tiny):
    proc = reedit("model=dreamomni2", "dataset=demo")
    assert proc.returncode == 2 and "model.lora_path must be set" in proc.stderr
    proc = reedit("model=dreamomni2", "dataset=demo", *weights(tiny))
    assert proc.returncode == 2 and "model.runtime.repo_path must be set" in proc.stderr
    gone = (f"model.lora_path={tmp_path}/lora", f"model.vlm_path={tmp_path}/vlm")
    proc = reedit("model=dreamomni2", "dataset=demo", "model.runtime.repo_path=/x", *gone)
    assert proc.returncode == 2
    assert f"model.lora_path: no such folder: {tmp_path}/lora" in proc.stderr
    assert f"model.vlm_path: no such folder: {tmp_path}/vlm" in proc.stderr
    worker = ("model.runtime.conda=null", f"+model.runtime.python={python}", *weights(tiny))
    (tmp_path / "not_a_clone").mkdir()
    for clone in (tmp_path / "DreamOmni2", tmp_path / "not_a_clone"):  # absent; not the clone
        proc = reedit(
            "model=dreamomni2",
            "dataset=demo",
            "limit=1",
            f"run_dir={tmp_path / clone.name}_run",
            *worker,
            f"model.runtime.repo_path={clone}",
        )
        assert proc.returncode == 2 and "model.runtime.repo_path" in proc.stderr, proc.stderr
    assert "clone https://github.com/dvlab-research/DreamOmni2" in proc.stderr  # import_repo
