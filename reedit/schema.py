"""Typed schemas for every config group, stored in Hydra's ConfigStore under ``schema/``.

Each option YAML starts with ``defaults: [/schema/<group>/<schema>@_here_, _self_]`` so that a
misspelt key or a wrong type fails at composition, naming the key. Schemas hold no model
defaults: values live in the YAML files (``MISSING`` here means "the YAML must set it").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

STAGES = ("edit", "analyze", "refine", "judge", "report")
CATEGORIES = ("physical", "environmental", "cultural", "causal", "referential")


# ----------------------------------------------------------------------------- models (editors)
@dataclass
class EditorSchema:
    """Keys every editor shares. Adapters extend it with their own knobs."""

    _target_: str = MISSING
    batch_size: int = 1
    # How `gpus` is used: one rank per GPU (data) or one model copy over all GPUs (model).
    parallel: str = "data"
    runtime: str = "inprocess"


@dataclass
class IdentitySchema(EditorSchema):
    pass


@dataclass
class PrecomputedSchema(EditorSchema):
    images_dir: str = MISSING
    suffix: str = ".png"


@dataclass
class DiffusersSchema(EditorSchema):
    """A diffusers pipeline editor (the shared vocabulary; values come from the YAML)."""

    path: str = MISSING  # hub id, local pipeline folder, or tiny:<name> (test/demo models)
    dtype: str = MISSING  # bfloat16 | float16 | float32
    num_inference_steps: int = MISSING
    guidance_scale: float | None = None
    true_cfg_scale: float | None = None
    negative_prompt: str | None = None
    height: int | None = None
    width: int | None = None
    max_area: int | None = None
    num_images_per_prompt: int = 1
    resize_output_to_input: bool = MISSING
    use_cpu_offload: bool = False
    generator_device: str = "cpu"  # cpu | device (the model's device)
    disable_progress_bar: bool = True


@dataclass
class FluxKontextSchema(DiffusersSchema):
    auto_resize: bool = MISSING


# ----------------------------------------------------------------------------- VLM users
@dataclass
class RefinerSchema:
    _target_: str | None = MISSING  # null: no refiner
    # A VLM backend node (its own `_target_`); null only for refiner=none.
    vlm: Any = None
    prompt_version: str = "v1"
    retries: int = 2
    max_new_tokens: int = 512
    batch_size: int = 8


@dataclass
class JudgeSchema:
    _target_: str | None = MISSING  # null: no judge
    vlm: Any = None
    prompt_version: str = "v1"
    # Which judgements to make: dimension (yes/no on the sample's own category), if, sc, pq.
    metrics: list[str] = field(default_factory=lambda: ["dimension", "if", "sc"])
    # generate: JSON verdict with reasoning (reference) | logprob: P(yes) of the first token
    decision: str = "generate"
    threshold: float = 0.5
    # Judgements shared by runs, keyed by judge, prompt, images and texts (null dir: user cache).
    cache: bool = True
    cache_dir: str | None = None
    # lenient: repair broken JSON, rescale 0..1 answers, clamp (all flagged) | strict: reference
    parse: str = "lenient"
    retries: int = 2
    max_new_tokens: int = 512
    batch_size: int = 8


@dataclass
class TransformersVLMSchema:
    """A VLM in process through transformers (``vlm:`` node of a refiner or judge)."""

    _target_: str = MISSING
    path: str = MISSING  # hub id, local folder, or tiny:<name>
    dtype: str = MISSING
    temperature: float = MISSING  # 0: greedy
    top_p: float = 1.0
    min_pixels: int | None = None
    max_pixels: int | None = None
    attn_implementation: str | None = None  # e.g. flash_attention_2 when installed
    device_map: str | None = None  # e.g. auto: one model spread over the visible GPUs
    batch_size: int = 8


@dataclass
class VLLMVLMSchema:
    """A persistent offline vLLM engine (``vlm:`` node of a refiner or judge)."""

    _target_: str = MISSING
    path: str = MISSING
    dtype: str = MISSING
    temperature: float = MISSING
    top_p: float = 1.0
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    limit_mm_per_prompt: int = 2
    min_pixels: int | None = None
    max_pixels: int | None = None
    logprobs: int = 20
    progress: bool = False
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    engine_factory: str = "vllm.LLM"
    batch_size: int = 1_000_000_000


@dataclass
class OpenAIVLMSchema:
    """Any OpenAI-compatible /v1/chat/completions endpoint (``vlm:`` node)."""

    _target_: str = MISSING
    base_url: str = MISSING
    model: str = MISSING
    api_key_env: str | None = None
    max_concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    temperature: float | None = 0.0
    top_p: float | None = None
    max_side: int | None = None
    image_detail: str | None = None
    logprobs: bool = False
    top_logprobs: int = 20
    max_tokens_param: str = "max_tokens"
    extra_headers: dict[str, str] = field(default_factory=dict)
    api_version: str | None = None
    azure: bool = False
    batch_size: int = 1024


# ----------------------------------------------------------------------------- datasets
@dataclass
class DatasetSchema:
    _target_: str = MISSING
    # fail: a bad record stops the load (all bad records listed); skip: drop and report them.
    on_bad_record: str = "fail"
    # Where decoded source images are cached (shared by runs); null: the user cache dir.
    cache_dir: Any = None


@dataclass
class ReEditSchema(DatasetSchema):
    # Path to RE-Edit.json; null downloads it from `repo_id` through huggingface_hub.
    path: Any = None
    repo_id: str = "Yixuan-Ding-ZJU/RE-Edit"
    filename: str = "RE-Edit.json"


@dataclass
class FolderSchema(DatasetSchema):
    root: str = MISSING
    index: str = "samples.jsonl"


# ----------------------------------------------------------------------------- logger
@dataclass
class LoggerSchema:
    _target_: str = MISSING


# ----------------------------------------------------------------------------- top level
@dataclass
class RefineSettings:
    mode: str = "joined"  # joined | sequential
    rounds: int = 1


@dataclass
class CompatSettings:
    # Apply the reference implementation's failure substitutions (for score parity only).
    upstream_failures: bool = False


@dataclass
class ReportSettings:
    bootstrap: int = 1000


@dataclass
class Config:
    model: Any = MISSING
    executor: Any = MISSING
    refiner: Any = MISSING
    judge: Any = MISSING
    dataset: Any = MISSING
    logger: Any = MISSING
    gpus: list[int] = field(default_factory=list)
    seed: int = 0
    seed_mode: str = "id"  # id | index
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    run_dir: Any = None
    limit: Any = None
    categories: list[str] = field(default_factory=lambda: list(CATEGORIES))
    max_error_rate: float = 0.1
    retry_errors: bool = False
    fresh: list[str] = field(default_factory=list)
    refine: RefineSettings = field(default_factory=RefineSettings)
    compat: CompatSettings = field(default_factory=CompatSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    progress: bool = True
    png_compress_level: int = 1
    # Shown at the start and end of the run and in the report (e.g. "random weights" in a demo).
    notice: str | None = None


@dataclass
class EditRefineConfig:
    """``python -m reedit.editrefine``: one image through edit, critique and refinement."""

    model: Any = MISSING
    executor: Any = MISSING
    refiner: Any = MISSING
    image: str = MISSING
    instruction: str = MISSING
    seed: int = 0
    gpus: list[int] = field(default_factory=list)
    refine_mode: str = "joined"


def register() -> None:
    """Store every schema in Hydra's ConfigStore (called once before composition)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(group="schema", name="config", node=Config)
    cs.store(group="schema", name="editrefine", node=EditRefineConfig)
    for group, name, node in (
        ("model", "editor", EditorSchema),
        ("model", "identity", IdentitySchema),
        ("model", "precomputed", PrecomputedSchema),
        ("model", "diffusers", DiffusersSchema),
        ("model", "flux_kontext", FluxKontextSchema),
        ("refiner", "refiner", RefinerSchema),
        ("judge", "judge", JudgeSchema),
        ("vlm", "transformers", TransformersVLMSchema),
        ("vlm", "vllm", VLLMVLMSchema),
        ("vlm", "openai", OpenAIVLMSchema),
        ("dataset", "re_edit", ReEditSchema),
        ("dataset", "folder", FolderSchema),
        ("logger", "logger", LoggerSchema),
    ):
        cs.store(group=f"schema/{group}", name=name, node=node)
