"""STAND-IN for ``configuration_ovis_u1.py`` of the Hugging Face remote code of AIDC-AI/Ovis-U1-3B.

Not the real file (see ``configuration_aimv2.py`` of this folder for why a stand-in exists: the
real remote code imports the CUDA-only ``flash_attn`` and is not in a repository reachable here).

Mirrors the real file's public names:

- the constants ``IGNORE_ID=-100``, ``IMAGE_TOKEN_ID=-200``, ``VIDEO_TOKEN_ID=-201``,
  ``IMAGE_TOKEN="<image>"``, ``IMAGE_ATOM_ID=-300``,
  ``IMAGE_INDICATOR_IDS=[-301, -302, -303, -304]``;
- the registrations it makes at import time: ``AutoConfig.register("aimv2", ...)`` and
  ``("yak", ...)`` with their models, and ``"aimv2_visual_tokenizer"``. ``aimv2`` is a built-in
  model type of transformers 5 (5.24; not of 4.51.3), so there the real
  ``AutoConfig.register("aimv2", ...)`` raises ``ValueError`` at import; so does this one;
- ``OvisU1Config.__init__(llm_config=None, visual_tokenizer_config=None,
  visual_generator_config=None, multimodal_max_length=2048, hidden_size=None,
  conversation_formatter_class=None, llm_attn_implementation=None, disable_tie_weight=False,
  **kwargs)``, sub-configs given as dicts with a ``model_type``;
- ``Qwen3ConversationFormatter(tokenizer)`` with the real class-name assertion
  (``support_tokenizer_types = ['QWenTokenizer', 'Qwen2TokenizerFast']``: transformers 5 names
  its Qwen2 tokenizer ``Qwen2Tokenizer``, which fails it, as the real one does) and
  ``format(conversations, generation_preface=None, enable_thinking=False) -> (prompt, input_ids,
  labels)``: ``<|im_start|>user\\n...<|im_end|>\\n`` turns, ``<image>`` as ``IMAGE_TOKEN_ID``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from transformers import AutoConfig, AutoModel, PretrainedConfig

from .configuration_aimv2 import AIMv2Config
from .configuration_yak import YakConfig
from .modeling_aimv2 import AIMv2Model
from .modeling_yak import YakModel

IGNORE_ID = -100
IMAGE_TOKEN_ID = -200
VIDEO_TOKEN_ID = -201
IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
IMAGE_ATOM_ID = -300
IMAGE_INDICATOR_IDS = [-301, -302, -303, -304]

AutoConfig.register("aimv2", AIMv2Config)
AutoModel.register(AIMv2Config, AIMv2Model)
AutoConfig.register("yak", YakConfig)
AutoModel.register(YakConfig, YakModel)


def _sub_config(value: Any) -> PretrainedConfig | None:
    """A sub-config given as a config or as a dict naming its ``model_type``."""
    if value is None or isinstance(value, PretrainedConfig):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"expected a PretrainedConfig or a dict, got {type(value)}")
    fields = dict(value)
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


class BaseVisualTokenizerConfig(PretrainedConfig):
    def __init__(
        self,
        vocab_size: int = 16384,
        tokenize_function: str = "softmax",
        tau: float = 1.0,
        depths: Any = None,
        use_indicators: bool = False,
        drop_cls_token: bool = False,
        backbone_config: PretrainedConfig | dict | None = None,
        hidden_stride: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.tokenize_function = tokenize_function
        self.tau = tau
        self.depths = depths
        self.use_indicators = use_indicators
        self.drop_cls_token = drop_cls_token
        self.backbone_config = _sub_config(backbone_config)
        self.hidden_stride = hidden_stride


class Aimv2VisualTokenizerConfig(BaseVisualTokenizerConfig):
    model_type = "aimv2_visual_tokenizer"


AutoConfig.register("aimv2_visual_tokenizer", Aimv2VisualTokenizerConfig)


class OvisU1Config(PretrainedConfig):
    model_type = "ovis_u1"

    def __init__(
        self,
        llm_config: PretrainedConfig | dict | None = None,
        visual_tokenizer_config: PretrainedConfig | dict | None = None,
        visual_generator_config: PretrainedConfig | dict | None = None,
        multimodal_max_length: int = 2048,
        hidden_size: int | None = None,
        conversation_formatter_class: str | None = None,
        llm_attn_implementation: str | None = None,
        disable_tie_weight: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.llm_config = _sub_config(llm_config)
        self.visual_tokenizer_config = _sub_config(visual_tokenizer_config)
        self.visual_generator_config = _sub_config(visual_generator_config)
        self.multimodal_max_length = multimodal_max_length
        self.hidden_size = hidden_size
        self.conversation_formatter_class = conversation_formatter_class
        self.llm_attn_implementation = llm_attn_implementation
        self.disable_tie_weight = disable_tie_weight


class ConversationFormatter(ABC):
    support_tokenizer_types: list[str] | None = None

    def __init__(self, tokenizer: Any) -> None:
        name = type(tokenizer).__name__
        assert name in self.support_tokenizer_types, (
            f"Invalid tokenizer type, expected one from `{self.support_tokenizer_types}`, "
            f"but got `{name}`"
        )
        self.tokenizer = tokenizer
        self.image_token = IMAGE_TOKEN
        self.image_token_id = IMAGE_TOKEN_ID
        self.ignore_id = IGNORE_ID
        self.im_end: str | None = None

    def _tokenize_with_image_symbol(self, text: str) -> list[int]:
        ids: list[int] = []
        for i, chunk in enumerate(text.split(self.image_token)):
            if i:
                ids.append(self.image_token_id)
            ids.extend(self.tokenizer(chunk, add_special_tokens=False).input_ids)
        return ids

    @abstractmethod
    def format(self, conversations: list[dict], generation_preface: str | None = None) -> Any:
        pass

    @abstractmethod
    def format_query(self, query: str, generation_preface: str = "") -> Any:
        pass


class Qwen3ConversationFormatter(ConversationFormatter):
    support_tokenizer_types = ["QWenTokenizer", "Qwen2TokenizerFast"]
    roles = {
        "system": "<|im_start|>system\n",
        "human": "<|im_start|>user\n",
        "gpt": "<|im_start|>assistant\n",
    }
    empty_think = "<think>\n\n</think>\n\n"

    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        self.im_end = "<|im_end|>\n"

    def format(
        self,
        conversations: list[dict],
        generation_preface: str | None = None,
        enable_thinking: bool = False,
    ) -> tuple[str, list[int], list[int]]:
        turns = list(conversations)
        if generation_preface is not None:  # an open assistant turn to continue
            turns.append({"from": "gpt", "value": generation_preface})
        prompt, input_ids = "", []
        for i, turn in enumerate(turns):
            think = self.empty_think if turn["from"] == "gpt" and not enable_thinking else ""
            text = self.roles[turn["from"]] + think + turn["value"]
            if i < len(turns) - 1 or generation_preface is None:
                text += self.im_end
            prompt += text
            input_ids.extend(self._tokenize_with_image_symbol(text))
        return prompt, input_ids, [self.ignore_id] * len(input_ids)

    def format_query(
        self, query: str, generation_preface: str = "", enable_thinking: bool = False
    ) -> tuple[str, list[int]]:
        conversation = [{"from": "human", "value": query}]
        prompt, input_ids, _ = self.format(conversation, generation_preface, enable_thinking)
        return prompt, input_ids
