"""The README's "Adding a model" recipe, run as written: its Python file and its YAML, dropped into
a package and a config folder of their own, make a model that composes, is checked and builds —
its own knob included — with nothing else edited."""

from __future__ import annotations

import re
import sys

import pytest
from conftest import ROOT
from PIL import Image

from reedit.config import ConfigError, build, spec_of
from reedit.models.base import EditRequest


def readme_blocks() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Adding a model") :]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    yaml = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    return {"python": python, "yaml": yaml}


@pytest.fixture
def added_model(tmp_path, monkeypatch):
    blocks = readme_blocks()
    module = re.search(r"# reedit/models/editors/(\w+)\.py", blocks["python"]).group(1)
    option = re.search(r"# conf/model/(\w+)\.yaml", blocks["yaml"]).group(1)
    package = tmp_path / "pkg" / "reedit_added"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / f"{module}.py").write_text(blocks["python"])
    (tmp_path / "conf" / "model").mkdir(parents=True)
    yaml = blocks["yaml"].replace("reedit.models.editors.", "reedit_added.")
    (tmp_path / "conf" / "model" / f"{option}.yaml").write_text(yaml)
    (tmp_path / "conf" / "executor").symlink_to("model")  # as conf/executor is
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    yield option, f"file://{tmp_path / 'conf'}"
    sys.modules.pop(f"reedit_added.{module}", None)


def compose_with(searchpath: str, *overrides: str):
    from hydra import compose, initialize_config_dir

    from reedit.cli import config_dir

    with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="reedit"):
        return compose("config", overrides=[f"hydra.searchpath=[{searchpath}]", *overrides])


def test_the_readme_recipe_makes_a_working_model(added_model):
    option, searchpath = added_model
    cfg = compose_with(searchpath, f"model={option}", f"executor={option}")
    spec = spec_of(cfg.model, "model")
    editor = build(spec)
    assert type(editor).__name__ == "MyModelEditor" and not editor.loaded
    assert spec_of(cfg.executor, "executor").settings == spec.settings
    req = EditRequest("k", "s", "physical", Image.new("RGB", (64, 48)), "make it red", 3)
    kwargs = editor.call_kwargs(req)
    assert kwargs["strength"] == 0.8 and kwargs["guidance_scale"] == 3.5
    assert kwargs["num_inference_steps"] == 30
    # its own knob is a setting like any other; a shared knob it does not honour is refused
    changed = compose_with(searchpath, f"model={option}", "model.strength=0.5")
    assert build(spec_of(changed.model, "model")).call_kwargs(req)["strength"] == 0.5
    with pytest.raises(ConfigError, match=r"model\.negative_prompt: MyModelEditor does not use"):
        spec_of(
            compose_with(searchpath, f"model={option}", "+model.negative_prompt=x").model, "model"
        )
    with pytest.raises(ConfigError, match=r"model\.strenght.*Did you mean 'model\.strength'"):
        spec_of(compose_with(searchpath, f"model={option}", "+model.strenght=1").model, "model")
