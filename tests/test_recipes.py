"""The environment recipes of the own-environment models (``reedit/runtime/envs/``), and what
``python -m reedit.doctor`` says about a model whose environment or clone is not there yet."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from conftest import ROOT

from reedit import doctor

ENVS = ROOT / "reedit" / "runtime" / "envs"
OWN_ENV = {  # model -> its recipe (the conda env name in the model's YAML)
    "omnigen2": "omnigen2",
    "hidream_e1": "hidream_e1",
    "dreamomni2": "dreamomni2",
    "janus": "janus",
    "step1x_edit_v1p1": "step1x_edit",
    "step1x_edit_v1p2_preview": "step1x_edit",
    "ovis_u1": "ovis_u1",
}


@pytest.mark.parametrize("model", sorted(OWN_ENV))
def test_each_model_defaults_to_a_worker_in_the_env_of_its_recipe(model):
    cfg = yaml.safe_load((ROOT / "conf" / "model" / f"{model}.yaml").read_text())
    assert cfg["runtime"]["kind"] == "worker" and cfg["runtime"]["conda"] == OWN_ENV[model]
    assert "python" in cfg["runtime"]  # so that model.runtime.python=... needs no '+'
    assert doctor.recipe(cfg["runtime"]) == ENVS / f"{OWN_ENV[model]}.yml"


@pytest.mark.parametrize("env", sorted(set(OWN_ENV.values())))
def test_a_recipe_is_a_conda_file_and_a_venv_script_naming_the_repository(env):
    path = ENVS / f"{env}.yml"
    recipe = yaml.safe_load(path.read_text())
    assert recipe["name"] == env
    pip = next(d["pip"] for d in recipe["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert any(p.startswith("transformers") for p in pip), pip  # pinned where the model needs
    assert doctor.repository(path).startswith("https://")
    script = path.with_suffix(".venv.sh")
    assert subprocess.run(["bash", "-n", str(script)], timeout=60).returncode == 0
    assert "python" in script.read_text() and "-m venv" in script.read_text()


@pytest.mark.parametrize("model", sorted(OWN_ENV))
def test_the_doctor_names_the_missing_clone_and_points_at_the_recipe(model, capsys):
    assert doctor.main([f"model={model}"]) == 1
    out = capsys.readouterr().out
    recipe = ENVS / f"{OWN_ENV[model]}.yml"
    assert (
        f"conda env create -f {recipe}" in out and f"bash {recipe.with_suffix('.venv.sh')}" in out
    )
    if (
        yaml.safe_load((ROOT / "conf" / "model" / f"{model}.yaml").read_text())["runtime"].get(
            "repo_path"
        )
        == "???"
    ):
        assert "model.runtime.repo_path" in out and doctor.repository(recipe) in out
