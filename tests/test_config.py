"""Every config option composes and instantiates; schema errors name the key; the CLI is light."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, TESTS, reedit_env
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from reedit.config import ConfigError, build, instantiate, spec_of
from reedit.data.base import DatasetError
from reedit.models.base import Editor
from reedit.models.vlm.base import VLM
from reedit.run import run, setup

CONF = ROOT / "conf"
GROUPS = ("model", "executor", "refiner", "judge", "dataset", "logger")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def filled(cfg, group: str) -> list[str]:
    """Overrides giving each mandatory (???) value of a group a placeholder path."""
    return [f"{key}=/nonexistent" for key in sorted(OmegaConf.missing_keys(cfg[group]))]


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in options(g)], ids=lambda x: str(x)
)
def test_every_option_composes_and_instantiates(compose, group, option):
    cfg = compose(f"{group}={option}")
    cfg = compose(f"{group}={option}", *filled(cfg, group))
    node = cfg[group]
    if node._target_ is None:  # refiner=none / judge=none: disabled, nothing to build
        assert option == "none"
        return
    spec = spec_of(node, group)  # every key is a setting of its target, typed, set, honoured
    obj = build(spec)
    if group in ("model", "executor"):
        assert isinstance(obj, Editor) and not obj.loaded  # building loads nothing


@pytest.mark.parametrize("option", options("vlm"))
def test_every_vlm_backend_serves_both_roles(compose, option):
    for role in ("judge", "refiner"):
        cfg = compose(*cfg_choice(role), f"vlm@{role}.vlm={option}")
        cfg = compose(*cfg_choice(role), f"vlm@{role}.vlm={option}", *filled(cfg, role))
        spec = spec_of(cfg[role], role)
        assert spec.children["vlm"].target == cfg[role].vlm._target_
        obj = build(spec)
        assert isinstance(obj.vlm, VLM) and not obj.vlm.loaded


def cfg_choice(role: str) -> list[str]:
    return ["judge=qwen3_vl"] if role == "judge" else ["refiner=qwen25_vl"]


def test_executor_reuses_the_model_files(compose):
    cfg = compose("executor=precomputed", "executor.images_dir=/x")
    model_file = compose("model=precomputed", "model.images_dir=/x")
    assert cfg.executor == model_file.model


def test_experiment_demo_composes(compose):
    cfg = compose("+experiment=demo")
    assert cfg.dataset.path.endswith("re_edit_demo.json")
    assert "DEMO" in cfg.notice


@pytest.mark.parametrize(
    "override,fragment",
    [
        ("model.batchsize=2", "batchsize"),
        ("seeed=1", "seeed"),
        ("refine.modes=joined", "modes"),
        ("dataset.on_bad_records=skip", "on_bad_records"),
    ],
)
def test_misspelt_key_fails_at_composition_naming_it(compose, override, fragment):
    key = override.split("=")[0]
    with pytest.raises(
        ConfigCompositionException, match=rf"Could not override '{re.escape(key)}'"
    ) as err:
        compose(override)
    assert fragment in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize("override", ["seed=abc", "max_error_rate=x"])
def test_wrong_top_level_type_fails_at_composition(compose, override):
    value = re.escape(override.split("=")[1])  # Hydra's message, or OmegaConf's if raised bare
    merging = rf"Error merging override {re.escape(override)}$"
    converting = rf"Value '{value}' of type 'str' could not be converted"
    with pytest.raises(
        (ConfigCompositionException, ValidationError), match=f"{merging}|{converting}"
    ) as err:
        compose(override)
    key = override.split("=")[0].split(".")[-1]
    assert key in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["model.batch_size=many"], "model.batch_size"),
        (["model=flux2_dev", "model.num_inference_steps=lots"], "model.num_inference_steps"),
        (["judge=qwen3_vl", "judge.vlm.temperature=hot"], "judge.vlm.temperature"),
        (["judge=openai", "judge.retries=[1]"], "judge.retries"),
    ],
)
def test_wrong_group_type_fails_at_set_up_naming_the_key(compose, overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        setup(compose(*overrides))


def test_misspelt_key_in_a_user_yaml_names_the_key(tmp_path):
    from hydra import compose, initialize_config_dir

    from reedit.cli import config_dir

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mine.yaml").write_text(
        "_target_: reedit.models.editors.identity.IdentityEditor\nbatchsize: 3\n"
    )
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra.searchpath=[file://{tmp_path}]", "model=mine"])
    with pytest.raises(ConfigError, match=r"model\.batchsize.*Did you mean 'model\.batch_size'"):
        setup(cfg)


def test_instantiate_names_unknown_key_and_suggests(compose):
    cfg = compose("model=slow_identity", "+model.dealy=1")
    with pytest.raises(ConfigError, match=r"model\.dealy.*Did you mean 'model\.delay'"):
        instantiate(cfg.model, what="model")
    with pytest.raises(ConfigError, match=r"cannot import 'nowhere\.Editor'"):
        instantiate({"_target_": "nowhere.Editor"}, what="model")


@pytest.mark.parametrize(
    "override,error,fragment",
    [
        ("stages=[edit,judje]", ConfigError, "judje"),
        ("seed_mode=position", ConfigError, "seed_mode"),
        ("refine.mode=parallel", ConfigError, "refine.mode"),
        ("refine.rounds=0", ConfigError, "refine.rounds"),
        ("max_error_rate=2", ConfigError, "max_error_rate"),
        ("fresh=[judging]", Exception, "fresh"),
    ],
)
def test_validate_names_the_key(compose, tmp_path, override, error, fragment):
    cfg = compose("dataset=demo", override)
    with pytest.raises(error, match=fragment):
        run(cfg, run_dir=tmp_path)


def test_judge_metric_typo(compose):
    cfg = compose("judge=scripted", "judge.metrics=[dimension,iff]")
    with pytest.raises(ConfigError, match="iff"):
        setup(cfg)


def test_category_typo_suggests(compose, tmp_path):
    cfg = compose("dataset=demo", "categories=[physcal]")
    with pytest.raises(DatasetError, match="Did you mean 'physical'"):
        run(cfg, run_dir=tmp_path)


def test_help_lists_groups_without_importing_torch():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "reedit", "--help"],
        capture_output=True,
        text=True,
        env=reedit_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    listed = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    for group in (*GROUPS, "experiment"):
        assert set(listed[group].split(", ")) == set(options(group)), group
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    for heavy in ("torch", "diffusers", "transformers", "accelerate", "wandb", "PIL"):
        assert heavy not in imported, f"--help imported {heavy}"


@pytest.mark.parametrize("model", options("model"))
def test_cfg_job_prints_each_model(model):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "reedit",
            f"model={model}",
            "model.images_dir=/x" if model == "precomputed" else "seed=0",
            "--cfg",
            "job",
        ],
        capture_output=True,
        text=True,
        env=reedit_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "_target_: reedit.models.editors." in proc.stdout


def test_installed_wheel_runs_outside_the_source_tree(tmp_path):
    """Configs, prompts and the demo dataset ship inside the wheel."""
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("reedit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "reedit/conf/config.yaml" in names and "reedit/conf/model/identity.yaml" in names
    assert "reedit/data/demo/re_edit_demo.json" in names
    assert "reedit/prompts/v1/judge_if_system.txt" in names
    assert not any(n.startswith("tests/") for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what `pip install --target` lays out
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = reedit_env(PYTHONPATH=str(site))
    where = subprocess.run(
        [sys.executable, "-P", "-c", "import reedit.cli as c; print(c.__file__, c.config_dir())"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert where.stdout.split() == [str(site / "reedit" / "cli.py"), str(site / "reedit" / "conf")]
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "reedit", "dataset=demo", "limit=1", "progress=false"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(list(work.glob("outputs/*/*/metrics.json"))) == 1


def test_tests_conf_is_test_only():
    assert not (CONF / "model" / "slow_identity.yaml").exists()
    assert (TESTS / "conf" / "model" / "slow_identity.yaml").exists()
    assert Path(ROOT / "conf" / "__init__.py").exists()


# The official recommendations (shared/reference/model_apis.md §1-4): the YAMLs must match them.
OFFICIAL = {
    "qwen_image_edit": dict(
        _target_="reedit.models.editors.qwen_image_edit.QwenImageEditEditor",
        path="Qwen/Qwen-Image-Edit",
        dtype="bfloat16",
        num_inference_steps=50,
        true_cfg_scale=4.0,
        negative_prompt=" ",
        generator_device="cpu",
        resize_output_to_input=False,
    ),
    "qwen_image_edit_2511": dict(
        _target_="reedit.models.editors.qwen_image_edit.QwenImageEditPlusEditor",
        path="Qwen/Qwen-Image-Edit-2511",
        dtype="bfloat16",
        num_inference_steps=40,
        true_cfg_scale=4.0,
        negative_prompt=" ",
        num_images_per_prompt=1,
        generator_device="cpu",
    ),
    "flux_kontext": dict(
        _target_="reedit.models.editors.flux_kontext.FluxKontextEditor",
        path="black-forest-labs/FLUX.1-Kontext-dev",
        dtype="bfloat16",
        num_inference_steps=28,
        guidance_scale=2.5,
        max_area=1024**2,
        auto_resize=True,
        height=None,
        width=None,
        generator_device="cpu",
    ),
    "flux2_dev": dict(
        _target_="reedit.models.editors.flux2.Flux2Editor",
        path="black-forest-labs/FLUX.2-dev",
        dtype="bfloat16",
        num_inference_steps=50,
        guidance_scale=4.0,
        use_cpu_offload=True,
        generator_device="device",
    ),
}


@pytest.mark.parametrize("model", sorted(OFFICIAL))
def test_cfg_job_matches_the_official_recommendation(model):
    import yaml

    proc = subprocess.run(
        [sys.executable, "-m", "reedit", f"model={model}", "--cfg", "job"],
        capture_output=True,
        text=True,
        env=reedit_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)["model"]
    for key, value in OFFICIAL[model].items():
        assert printed[key] == value, f"model={model}: {key}={printed[key]!r}, official {value!r}"
    # every value is cited in the YAML
    for line in (CONF / "model" / f"{model}.yaml").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("num_inference_steps", "true_cfg_scale", "guidance_scale", "dtype"):
            assert "#" in line, f"{model}.yaml: '{key}' has no source comment"


def test_seed_document_alias_and_executors(compose):
    alias, real = compose("model=multi_gpu_qwen_edit"), compose("model=qwen_image_edit")
    assert alias.model == real.model
    assert compose("executor=flux2_dev").executor == compose("model=flux2_dev").model
    assert compose("executor=qwen_image_edit").executor == real.model


@pytest.mark.parametrize(
    "model",
    ["tiny_qwen_image_edit", "tiny_qwen_image_edit_2511", "tiny_flux_kontext", "tiny_flux2"],
)
def test_tiny_configs_are_the_real_ones_on_tiny_weights(compose, model):
    tiny = compose(f"model={model}").model
    real = compose(f"model={OFFICIAL_OF[model]}").model
    assert tiny._target_ == real._target_ and tiny.path == f"tiny:{model[5:]}"
    assert tiny.dtype == "float32" and tiny.num_inference_steps == 2


OFFICIAL_OF = {
    "tiny_qwen_image_edit": "qwen_image_edit",
    "tiny_qwen_image_edit_2511": "qwen_image_edit_2511",
    "tiny_flux_kontext": "flux_kontext",
    "tiny_flux2": "flux2_dev",
}


def test_the_import_layers_hold():
    """pyproject.toml's import-linter contracts: the layers point one way, reedit/report imports
    no model code, no package has an import cycle (also run by `make test` before pytest)."""
    linter = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "3 kept, 0 broken" in proc.stdout
