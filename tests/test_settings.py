"""Settings declared once, beside each class, and checked at set-up — for every model config,
found in conf/model/ (a new YAML is covered without editing a list here)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from conftest import ROOT
from PIL import Image

from reedit import settings
from reedit.config import ConfigError, build, spec_of
from reedit.models.base import EditRequest

MODELS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))
# a value for each shared knob, different from every YAML's (height/width go together)
KNOB_VALUES = {
    "guidance_scale": ["{what}.guidance_scale=1.25"],
    "true_cfg_scale": ["{what}.true_cfg_scale=1.75"],
    "negative_prompt": ["{what}.negative_prompt=blurry"],
    "height": ["{what}.height=96", "{what}.width=128"],
    "width": ["{what}.height=128", "{what}.width=96"],
    "max_area": ["{what}.max_area=12288"],
}


def model_spec(compose, option, *extra):
    from omegaconf import OmegaConf

    cfg = compose(f"model={option}")
    missing = [f"{k}=/nonexistent" for k in sorted(OmegaConf.missing_keys(cfg.model))]
    return spec_of(compose(f"model={option}", *missing, *extra).model, "model")


def overrides(cfg_keys, knob):
    return [
        ("" if key.split("=")[0].split(".")[-1] in cfg_keys else "+") + key.format(what="model")
        for key in KNOB_VALUES[knob]
    ]


@pytest.mark.parametrize("option", MODELS)
def test_every_shared_knob_is_honoured_or_refused(compose, option):
    """A knob the adapter honours reaches its pipeline call; one it ignores is a set-up error
    naming the key (it would change the fingerprint and nothing else)."""
    spec = model_spec(compose, option)
    knobs = settings.knobs(spec.cls.Settings)
    assert set(spec.cls.honours) <= set(knobs), "honours names a knob the family lacks"
    keys = set(compose(f"model={option}").model)
    request = EditRequest("k", "s", "physical", Image.new("RGB", (160, 120)), "make it red", 1)
    # A model that runs in its own environment is called there: its external test
    # (tests/test_model_<name>.py) checks that its knobs reach the real call.
    here = getattr(spec.settings, "runtime", "inprocess") == "inprocess"
    base = build(spec).call_kwargs(request) if knobs and here else None
    for knob in knobs:
        if knob in spec.cls.honours:
            if not here:
                continue
            changed = build(model_spec(compose, option, *overrides(keys, knob)))
            assert changed.call_kwargs(request) != base, f"{option}: {knob} has no effect"
        else:
            pair = "(height|width)" if knob in ("height", "width") else knob  # set together
            with pytest.raises(ConfigError, match=rf"model\.{pair}: .* does not use {pair}"):
                model_spec(compose, option, *overrides(keys, knob))


def test_a_knob_flux2_ignores_is_refused(compose):
    with pytest.raises(ConfigError, match=r"model\.negative_prompt: Flux2Editor does not use"):
        model_spec(compose, "flux2_dev", "+model.negative_prompt=blurry")


@pytest.mark.parametrize("option", MODELS)
def test_every_setting_is_declared_once_with_a_default_or_set_in_the_yaml(compose, option):
    spec = model_spec(compose, option)
    cls = spec.cls
    fields = {f.name for f in dataclasses.fields(cls.Settings)}
    assert set(compose(f"model={option}").model) - {"_target_"} <= fields
    given = {"settings", "gpus", "locate", "kwargs", "values"}  # what the run hands every model
    assert set(inspect.signature(cls).parameters) <= given, "a setting is a constructor argument"


def test_output_fields_leave_runtime_fields_out(compose):
    spec = model_spec(compose, "flux2_dev")
    out = spec.output_tree()
    assert {"batch_size", "parallel", "runtime", "use_cpu_offload"}.isdisjoint(out)
    assert {"_target_", "path", "num_inference_steps", "generator_device"} <= set(out)
    judge = spec_of(compose("judge=qwen3_vl_vllm").judge, "judge").output_tree()
    assert {"metrics", "batch_size", "cache", "cache_dir"}.isdisjoint(judge)
    assert {"tensor_parallel_size", "gpu_memory_utilization", "progress"}.isdisjoint(judge["vlm"])
    assert {"path", "temperature", "logprobs", "engine_kwargs"} <= set(judge["vlm"])


def test_a_mandatory_setting_left_unset_is_named(compose):
    with pytest.raises(ConfigError, match=r"model\.images_dir must be set"):
        spec_of(compose("model=precomputed").model, "model")
    with pytest.raises(ConfigError, match=r"refiner\.vlm\.path must be set"):
        spec_of(compose("refiner=editrefine").refiner, "refiner")
    with pytest.raises(ConfigError, match=r"judge\.vlm must be set"):
        spec_of(compose("judge=qwen3_vl", "judge.vlm=null").judge, "judge")


def test_a_settings_check_names_the_key(compose):
    with pytest.raises(ConfigError, match=r"model\.dtype must be one of"):
        spec_of(compose("model=flux2_dev", "model.dtype=float8").model, "model")
    with pytest.raises(ConfigError, match=r"judge\.metrics: unknown \['iff'\]"):
        spec_of(compose("judge=qwen3_vl", "judge.metrics=[iff]").judge, "judge")
