"""The errors a user will hit with the diffusers editors: one paragraph naming the key to change,
never a bare traceback from inside diffusers; OOM on one sample is that sample's error record."""

from __future__ import annotations

import pytest

from reedit.config import ConfigError
from reedit.records import RecordStore
from reedit.run import run
from reedit.runtime.pool import ModelLoadError

BASE = ("dataset=demo", "progress=false", "limit=1", "categories=[physical]")


def test_hub_id_not_downloaded_while_offline(compose, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    cfg = compose(*BASE, "model=flux_kontext", "model.dtype=float32")
    with pytest.raises(
        ModelLoadError,
        match=r"model\.path: 'black-forest-labs/FLUX\.1-Kontext-dev' is not in the Hugging Face",
    ) as err:
        run(cfg, run_dir=tmp_path / "run")
    msg = str(err.value)
    assert (
        "model.path: 'black-forest-labs/FLUX.1-Kontext-dev' is not in the Hugging Face cache" in msg
    )
    assert "HF_HUB_OFFLINE=1" in msg and "hf download black-forest-labs/FLUX.1-Kontext-dev" in msg


def test_local_path_that_does_not_exist(compose, tmp_path):
    """Named at set-up, before any data is read (no run folder is made)."""
    cfg = compose(*BASE, "model=tiny_flux2", f"model.path={tmp_path}/nowhere")
    with pytest.raises(ConfigError, match=r"model.path: no such folder: .*nowhere"):
        run(cfg, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_worker_repo_path_that_does_not_exist_is_named_at_set_up(compose, tmp_path):
    """With the model path's problem, in one message, before a worker is started."""
    runtime = f"{{kind:worker,repo_path:['{tmp_path}/clone']}}"
    cfg = compose(
        *BASE, "model=tiny_flux2", f"model.path={tmp_path}/nowhere", f"+model.runtime={runtime}"
    )
    with pytest.raises(ConfigError, match=r"^2 problems in the configuration: ") as err:
        run(cfg, run_dir=tmp_path / "run")
    assert f"model.runtime.repo_path: no such folder: {tmp_path}/clone" in str(err.value)
    assert "model.path: no such folder" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_local_folder_that_is_not_a_pipeline(compose, tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "model.safetensors").write_bytes(b"")
    cfg = compose(*BASE, "model=tiny_flux2", f"model.path={tmp_path}/weights")
    with pytest.raises(ModelLoadError, match="not a diffusers pipeline folder"):
        run(cfg, run_dir=tmp_path / "run")


def test_cuda_requested_but_unavailable(compose, tmp_path):
    cfg = compose(*BASE, "model=tiny_flux2", "gpus=[0]")
    with pytest.raises(ModelLoadError, match=r"gpus=\[0\] asks for CUDA .* set gpus=\[\] to run"):
        run(cfg, run_dir=tmp_path / "run")


def test_bfloat16_on_a_gpu_without_it(compose, tmp_path, monkeypatch):
    """A pre-Ampere GPU cannot exist here: torch's capability answers are stood in for."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100-SXM2-32GB")
    cfg = compose(*BASE, "model=tiny_flux2", "model.dtype=bfloat16", "gpus=[0]")
    with pytest.raises(
        ModelLoadError,
        match=r"model.dtype=bfloat16 is not supported on Tesla "
        r"V100.*set model.dtype=float16",
    ):
        run(cfg, run_dir=tmp_path / "run")


def test_out_of_memory_on_one_sample_is_its_error_record(compose, tmp_path, monkeypatch):
    """CUDA OOM cannot happen on a CPU: the pipeline call raises torch's real OOM error for one
    instruction, as CUDA would."""
    import diffusers
    import torch

    real_call = diffusers.Flux2Pipeline.__call__

    def call(self, *args, **kwargs):
        if "Tip the glass" in kwargs["prompt"]:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(diffusers.Flux2Pipeline, "__call__", call)
    cfg = compose(
        "dataset=demo",
        "progress=false",
        "categories=[physical]",
        "model=tiny_flux2",
        "model.height=64",
        "model.width=64",
        "max_error_rate=0.5",
    )
    metrics = run(cfg, run_dir=tmp_path / "run")
    edits = RecordStore(tmp_path / "run", "edit").load()
    bad = edits["00001_physical_medium"]
    assert bad["status"] == "error" and bad["error_type"] == "OutOfMemoryError"
    assert "model.height" in bad["error"] and "use_cpu_offload" in bad["error"]
    assert edits["00000_physical_easy"]["status"] == "ok"
    assert metrics["stages"]["edit"]["errors_by_type"] == {"OutOfMemoryError": 1}
