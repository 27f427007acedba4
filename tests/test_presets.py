"""``+experiment=re_edit_reference``: the reference implementation's shipped settings, merged over
each seed model's YAML (as the editor under evaluation and as the executor)."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from conftest import ROOT
from hydra.utils import get_class
from omegaconf import OmegaConf

VALUES = ROOT / "conf" / "preset_values" / "re_edit_reference"
SEED_MODELS = {  # the eleven editing models of the seed document
    "qwen_image_edit",
    "qwen_image_edit_2511",
    "flux_kontext",
    "flux2_dev",
    "step1x_edit_v1p1",
    "step1x_edit_v1p2_preview",
    "janus",
    "ovis_u1",
    "hidream_e1",
    "omnigen2",
    "dreamomni2",
}


def test_every_seed_model_has_reference_values():
    assert {p.stem for p in VALUES.glob("*.yaml")} == SEED_MODELS
    assert all((ROOT / "conf" / "model" / f"{name}.yaml").is_file() for name in SEED_MODELS)


@pytest.mark.parametrize("name", sorted(SEED_MODELS))
def test_the_preset_sets_the_reference_values_of_every_model(compose, name):
    values = yaml.safe_load((VALUES / f"{name}.yaml").read_text())
    plain = compose(f"model={name}", f"executor={name}")
    cfg = compose("+experiment=re_edit_reference", f"model={name}", f"executor={name}")
    settings = {f.name for f in dataclasses.fields(get_class(cfg.model._target_).Settings)}
    assert set(values) <= settings, set(values) - settings  # each a real setting of the class
    for group in ("model", "executor"):
        got = OmegaConf.to_container(cfg[group], resolve=False)
        assert {k: got[k] for k in values} == values
        untouched = OmegaConf.to_container(plain[group], resolve=False)
        assert {k: v for k, v in got.items() if k not in values} == {
            k: v for k, v in untouched.items() if k not in values
        }
    assert (cfg.seed_mode, plain.seed_mode) == ("index", "id")


def test_the_command_line_beats_the_preset_and_preset_is_its_own_switch(compose):
    cfg = compose(
        "+experiment=re_edit_reference", "model=flux_kontext", "model.num_inference_steps=3"
    )
    assert cfg.model.num_inference_steps == 3 and cfg.model.generator_device == "device"
    same = compose("preset=re_edit_reference", "model=flux_kontext")
    assert same.model.num_inference_steps == 50 and same.seed_mode == "index"
    assert compose("model=flux_kontext").model.num_inference_steps == 28
    # a model without reference values (a tiny test model) composes unchanged
    tiny = compose("+experiment=re_edit_reference", "model=tiny_flux2")
    assert tiny.model.num_inference_steps == compose("model=tiny_flux2").model.num_inference_steps
