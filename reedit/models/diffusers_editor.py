"""What every diffusers-pipeline editor shares: loading (dtype, device, offload, multi-GPU
placement), per-sample generators, the output size policy and errors that name the config key.

Adapters (``reedit/models/editors/*.py``) subclass :class:`DiffusersEditor`, name their pipeline
class and implement :meth:`DiffusersEditor.call_kwargs` (the model-specific call). A pipeline that
lives in the model's own repository (or a diffusers fork) overrides :meth:`pipeline_type` and, where
its loading or its call differ, :meth:`load_pipeline` and :meth:`generate`. Every value comes from
the model's YAML; nothing here has a model default of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from reedit import hub
from reedit.models.base import Edited, Editor, EditRequest
from reedit.models.component import DTYPES, seed_global_rngs
from reedit.settings import MISSING, check_choice, knob, runtime_field

log = logging.getLogger(__name__)


class DiffusersEditor(Editor):
    """A diffusers pipeline behind the :class:`Editor` interface."""

    pipeline_class: str = ""  # e.g. "QwenImageEditPipeline" (imported from diffusers in load)
    requires = ("torch", "transformers", "diffusers")
    dtype_kwarg: ClassVar[str] = "dtype"  # diffusers < 0.37 (a fork) calls it torch_dtype
    # Seed torch's, NumPy's and Python's global RNGs from the sample's seed before each call,
    # for models that also sample from them (not only from the per-sample generator).
    seeds_global_rngs: ClassVar[bool] = False

    @classmethod
    def import_checks(cls) -> tuple[str, ...]:
        return (*cls.requires, f"diffusers:{cls.pipeline_class}")

    @dataclass
    class Settings(Editor.Settings):
        """The shared vocabulary of the diffusers editors; each adapter declares the knobs it
        honours (``honours``), and a knob set that it ignores is a set-up error."""

        path: str = MISSING  # hub id, local pipeline folder, or tiny:<name> (test/demo models)
        dtype: str = MISSING  # bfloat16 | float16 | float32
        num_inference_steps: int = MISSING
        guidance_scale: float | None = knob()
        true_cfg_scale: float | None = knob()
        negative_prompt: str | None = knob()
        height: int | None = knob()
        width: int | None = knob()
        max_area: int | None = knob()  # output area at the input's aspect ratio
        num_images_per_prompt: int = 1
        resize_output_to_input: bool = MISSING
        use_cpu_offload: bool = runtime_field(False)
        generator_device: str = "cpu"  # cpu | device (the model's device)
        disable_progress_bar: bool = runtime_field(True)
        # How `gpus` is used: one copy per GPU (data) or one copy over all of them (model).
        parallel: str = runtime_field("data")

        def __post_init__(self) -> None:
            super().__post_init__()
            check_choice("dtype", self.dtype, DTYPES)
            check_choice("parallel", self.parallel, ("data", "model"))

    def __init__(self, settings: Any = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.pipe: Any = None
        self.device = "cpu"

    # -- loading ---------------------------------------------------------------------------
    def resolve_path(self) -> str:
        """A local folder (checked) or a hub id; ``locate`` resolves test models first."""
        configured = self.settings.path
        path = self.locate(configured)
        local = Path(path).expanduser()
        looks_local = path != configured or path.startswith(("/", ".", "~")) or local.exists()
        if looks_local:
            if not local.is_dir():
                raise FileNotFoundError(f"model.path: no such folder: {local}")
            if not (local / "model_index.json").is_file():
                raise FileNotFoundError(
                    f"model.path: {local} is not a diffusers pipeline folder (no "
                    "model_index.json); point it at the folder that holds model_index.json"
                )
            return str(local)
        return path  # a hub id

    def choose_device(self) -> str:
        import torch

        if not self.gpus:
            return "cpu"
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"gpus={self.gpus} asks for CUDA but torch sees no GPU "
                "(torch.cuda.is_available() is False); set gpus=[] to run on the CPU"
            )
        device = f"cuda:{self.gpus[0]}"
        if self.settings.dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
            name = torch.cuda.get_device_name(self.gpus[0])
            raise RuntimeError(
                f"model.dtype=bfloat16 is not supported on {name}; set model.dtype=float16 "
                "(or float32)"
            )
        return device

    def is_hub_id(self, path: str) -> bool:
        return path == self.settings.path and not Path(path).exists()

    def _load(self) -> None:
        import torch

        self.device = self.choose_device()
        path = self.resolve_path()
        # decided before diffusers imports huggingface_hub (which reads HF_HUB_OFFLINE then);
        # offline, diffusers is told so (else it tries the hub first and warns that it could not)
        offline = self.is_hub_id(path) and hub.offline()
        import diffusers
        import transformers

        if self.settings.disable_progress_bar:
            # the "Loading pipeline components" bar and the components' "Loading weights" bars
            diffusers.utils.logging.disable_progress_bar()
            transformers.utils.logging.disable_progress_bar()
        cls = self.pipeline_type()
        kwargs: dict[str, Any] = {self.dtype_kwarg: getattr(torch, self.settings.dtype)}
        if offline:
            kwargs["local_files_only"] = True
        if self.settings.parallel == "model" and len(self.gpus) > 1:
            kwargs["device_map"] = "balanced"
            # over the listed GPUs only (balanced spreads over every GPU it is told of)
            kwargs["max_memory"] = {g: torch.cuda.mem_get_info(g)[0] for g in self.gpus}
        try:
            pipe = self.load_pipeline(cls, path, kwargs)
        except Exception as exc:
            raise self._explain_load_error(exc, path) from exc
        if "device_map" not in kwargs:
            if self.settings.use_cpu_offload and self.device != "cpu":
                pipe.enable_model_cpu_offload(gpu_id=self.gpus[0])
            else:
                pipe.to(self.device)
        pipe.set_progress_bar_config(disable=self.settings.disable_progress_bar)
        self.pipe = pipe

    def pipeline_type(self) -> Any:
        """The pipeline class (diffusers' ``pipeline_class``; a repository's own, imported here)."""
        import diffusers

        return getattr(diffusers, self.pipeline_class)

    def load_pipeline(self, cls: Any, path: str, kwargs: dict[str, Any]) -> Any:
        """The pipeline, not yet on its device (``kwargs``: dtype, offline, device map)."""
        return cls.from_pretrained(path, **kwargs)

    def _explain_load_error(self, exc: Exception, path: str) -> Exception:
        text = f"{type(exc).__name__}: {exc}"
        if self.is_hub_id(path):
            reason = hub.offline_reason()
            how = (
                f"the hub is offline ({reason})"
                if reason
                else "it could not be downloaded (gated repository? no network? log in with "
                "`hf auth login`)"
            )
            return RuntimeError(
                f"model.path: '{path}' is not in the Hugging Face cache and {how}. Download it "
                f"once with `hf download {path}`, or set model.path to a local pipeline folder. "
                f"({text.splitlines()[0][:300]})"
            )
        return RuntimeError(f"model.path: cannot load {path}: {text.splitlines()[0][:500]}")

    def _close(self) -> None:
        import gc

        self.pipe = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass

    # -- the model call ----------------------------------------------------------------------
    def call_kwargs(self, req: EditRequest) -> dict[str, Any]:
        """The pipeline's keyword arguments for one request (the model-specific part)."""
        raise NotImplementedError

    def _edit(self, requests: Sequence[EditRequest]) -> list[Any]:
        import torch

        s, out = self.settings, []
        for req in requests:
            where = self.device if s.generator_device == "device" else s.generator_device
            generator = torch.Generator(device=where).manual_seed(req.seed)
            kwargs = self.call_kwargs(req)
            if s.num_images_per_prompt != 1:
                kwargs["num_images_per_prompt"] = s.num_images_per_prompt
            if self.seeds_global_rngs:
                seed_global_rngs(req.seed)
            try:
                with torch.inference_mode():
                    image = self.generate(req, generator, kwargs)
            except torch.OutOfMemoryError as exc:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise torch.OutOfMemoryError(
                    f"out of memory on {self.device} for {req.sample_id} "
                    f"({req.image.size[0]}x{req.image.size[1]} input): lower model.height/"
                    "model.width or model.max_area, set model.use_cpu_offload=true, or use "
                    f"parallel=model with more gpus ({str(exc).splitlines()[0][:200]})"
                ) from None
            out.append(resized_to_input(image, req) if s.resize_output_to_input else image)
        return out

    def generate(self, req: EditRequest, generator: Any, kwargs: dict[str, Any]) -> Any:
        """The pipeline call: its image, or an :class:`Edited` with what it said about it."""
        return self.pipe(generator=generator, **kwargs).images[0]

    def output_size(self, req: EditRequest, multiple: int) -> tuple[int | None, int | None]:
        """(height, width): explicit values, else the input's aspect ratio at ``max_area``
        floored to ``multiple``, else (None, None) for the pipeline's own policy."""
        s = self.settings
        if s.height and s.width:
            return s.height, s.width
        if s.max_area:
            w, h = req.image.size
            scale = (s.max_area / (w * h)) ** 0.5
            return (
                max(multiple, int(h * scale) // multiple * multiple),
                max(multiple, int(w * scale) // multiple * multiple),
            )
        return None, None

    def info(self) -> dict[str, Any]:
        policy = {"size_policy": self.size_policy} if self.size_policy else {}
        return {
            **policy,
            "pipeline": self.pipeline_class,
            "path": self.settings.path,
            "dtype": self.settings.dtype,
            "device": self.device,
            "resize_output_to_input": self.settings.resize_output_to_input,
        }


def resized_to_input(image: Any, req: EditRequest) -> Any:
    """The output (an image or an :class:`Edited`) at the input's size (LANCZOS)."""
    inner = image.image if isinstance(image, Edited) else image
    if inner.size == req.image.size:
        return image
    from PIL import Image

    inner = inner.resize(req.image.size, Image.Resampling.LANCZOS)
    return Edited(inner, image.details) if isinstance(image, Edited) else inner
