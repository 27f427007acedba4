"""STAND-IN for ``modeling_ovis_u1.py`` of the Hugging Face remote code of AIDC-AI/Ovis-U1-3B.

Not the real file. The real remote code cannot run in reedit's tests: its vision tower imports the
CUDA-only ``flash_attn`` at module level (no fallback), and its six files come only with the
checkpoint (``trust_remote_code=True``), from no repository reachable here. This stand-in is loaded
exactly as the real code is: ``config.json`` names it in ``auto_map`` (``AutoConfig`` ->
``configuration_ovis_u1.OvisU1Config``, ``AutoModelForCausalLM`` -> ``modeling_ovis_u1.OvisU1``)
and ``AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)`` imports it; its
``OvisU1`` reads its tokenizer and image processor from the same folder, as the real one does.

Mirrors the real public API (names, signatures, defaults and return shapes, read from the remote
code):

- ``Aimv2VisualTokenizer.smart_resize(height, width, factor=28, min_pixels=56*56,
  max_pixels=14*14*4*1280) -> (height, width)``: sides multiples of ``factor``, area within
  ``[min_pixels, max_pixels]``, aspect ratio kept as far as it can be (Qwen2-VL's rule);
- ``Aimv2VisualTokenizer.preprocess_image(images, convert_to_rgb=True, num_images=1,
  min_pixels=None, max_pixels=None, multimodal_type='single_image') -> (patches [#patches,
  C*T*P*P], grid_thws [[t, h, w]], placeholders)`` and ``.image_processor`` (a
  ``CLIPImageProcessor`` carrying ``min_pixels``, ``max_pixels``, ``patch_size``,
  ``hidden_stride``, ``temporal_patch_size``);
- ``OvisU1.get_text_tokenizer()``, ``get_visual_tokenizer()``, ``get_visual_generator()``,
  ``get_llm()``, ``.visual_generator`` (``YakModel``);
- ``OvisU1.preprocess_inputs(text_or_conversations, images, generation_preface='',
  return_labels=False, propagate_exception=True, frame_selector=None,
  multimodal_type="single_image", fix_sample_overall_length_navit=False, min_pixels=None,
  max_pixels=None, enable_thinking=False) -> (prompt, input_ids, pixel_values, grid_thws)``;
- ``OvisU1.generate_condition(inputs=None, **kwargs) -> {"txt": [b, L, 2*hidden]}``: the LLM's
  last two hidden states concatenated (``attention_mask``, ``pixel_values``, ``grid_thws`` are
  taken from ``kwargs``, every other keyword goes on to the LLM's forward);
- ``OvisU1.generate_img(inputs=None, cond=None, no_both_cond=None, no_txt_cond=None, **kwargs)
  -> [PIL images]``, reading ``height`` (1024), ``width`` (1024), ``num_steps`` (50), ``seed``
  (42), ``img_cfg`` (1.5) and ``txt_cfg`` (5) from ``kwargs`` with those defaults;
- like the real ``OvisU1``, ``BaseVisualTokenizer`` and ``YakModel``, it never calls
  ``post_init()`` (transformers 5's ``from_pretrained`` expects it).

The LLM is the real ``AutoModelForCausalLM.from_config(llm_config)`` (a tiny Qwen3 in the tests);
the vision tower and the MMDiT are tiny stand-ins (``modeling_aimv2.py``, ``modeling_yak.py``).
"""

from __future__ import annotations

import logging
import math
from importlib import import_module
from typing import Any

import numpy as np
import PIL.Image
import torch
from torch.nn.functional import softmax
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
)

from .configuration_ovis_u1 import (
    IGNORE_ID,
    IMAGE_ATOM_ID,
    IMAGE_INDICATOR_IDS,
    IMAGE_TOKEN_ID,
    VIDEO_TOKEN_ID,
    Aimv2VisualTokenizerConfig,
    BaseVisualTokenizerConfig,
    ConversationFormatter,
    OvisU1Config,
)
from .configuration_yak import YakConfig
from .modeling_yak import YakModel


class BaseVisualTokenizer(PreTrainedModel):
    base_model_prefix = "backbone"
    main_input_name = None

    def __init__(self, config: BaseVisualTokenizerConfig, *inputs: Any, **kwargs: Any) -> None:
        super().__init__(config, *inputs, **kwargs)
        self.image_processor = AutoImageProcessor.from_pretrained(
            kwargs["image_processor_name_or_path"]
        )
        self.backbone = AutoModel.from_config(self.config.backbone_config)
        width = self.backbone.config.hidden_size * self.config.hidden_stride**2
        vocab = self.config.vocab_size - len(IMAGE_INDICATOR_IDS)
        self.head = torch.nn.Sequential(
            torch.nn.Linear(width, vocab, bias=False), torch.nn.LayerNorm(vocab)
        )
        ip = self.image_processor
        supported = ip.do_resize and ip.do_rescale and ip.do_normalize
        assert supported and not getattr(ip, "do_center_crop", False), (
            f"image_processor `{ip}` is not supported currently"
        )

    def get_backbone(self) -> torch.nn.Module:
        return self.backbone

    def get_image_processor(self) -> Any:
        return self.image_processor

    def get_head(self) -> torch.nn.Module:
        return self.head

    @staticmethod
    def construct_image_placeholders(grid: Any, data_type: str = "image") -> list[int]:
        if data_type == "image":
            return [IMAGE_INDICATOR_IDS[0], IMAGE_ATOM_ID, IMAGE_INDICATOR_IDS[1]]
        if data_type == "video":
            return [IMAGE_INDICATOR_IDS[2], IMAGE_ATOM_ID, IMAGE_INDICATOR_IDS[2]]
        raise TypeError(data_type)

    def tokenize(self, logits: torch.Tensor) -> torch.Tensor:
        if self.config.tokenize_function != "softmax":
            raise ValueError(
                f"the stand-in tokenizes with softmax only, not {self.config.tokenize_function}"
            )
        return softmax(logits, dim=-1, dtype=torch.float32).to(logits.dtype)


class Aimv2VisualTokenizer(BaseVisualTokenizer):
    config_class = Aimv2VisualTokenizerConfig
    _no_split_modules = ["AIMv2Block"]

    def smart_resize(
        self,
        height: int,
        width: int,
        factor: int = 28,
        min_pixels: int = 56 * 56,
        max_pixels: int = 14 * 14 * 4 * 1280,
    ) -> tuple[int, int]:
        if min(height, width) < factor:  # the real code prints a warning and stretches
            if height < width:
                height, width = factor, round(factor / height * width)
            else:
                height, width = round(factor / width * height), factor
        elif max(height, width) > 200 * min(height, width):  # aspect ratio clipped at 200
            if height > width:
                height = 200 * width
            else:
                width = 200 * height
        rows, cols = round(height / factor) * factor, round(width / factor) * factor
        if rows * cols > max_pixels:
            shrink = math.sqrt(height * width / max_pixels)
            rows = math.floor(height / shrink / factor) * factor
            cols = math.floor(width / shrink / factor) * factor
        elif rows * cols < min_pixels:
            grow = math.sqrt(min_pixels / (height * width))
            rows = math.ceil(height * grow / factor) * factor
            cols = math.ceil(width * grow / factor) * factor
        return rows, cols

    def get_min_image_size(self) -> tuple[int, int]:
        ip = self.image_processor
        side = int(ip.min_pixels**0.5)
        factor = ip.patch_size * ip.hidden_stride
        return self.smart_resize(side, side, factor, ip.min_pixels, ip.max_pixels)

    def mock_input(self) -> tuple[torch.Tensor, list[int]]:
        height, width = self.get_min_image_size()
        return torch.zeros(1, 3, height, width), self.construct_image_placeholders((1, 1))

    def preprocess_image(
        self,
        images: PIL.Image.Image | list[PIL.Image.Image],
        convert_to_rgb: bool | None = True,
        num_images: int | None = 1,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        multimodal_type: str | None = "single_image",
    ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        ip = self.image_processor
        patch, frames_per_patch, stride = ip.patch_size, ip.temporal_patch_size, ip.hidden_stride
        max_pixels = (max_pixels or ip.max_pixels) // num_images
        min_pixels = min(max_pixels, min_pixels or ip.min_pixels)
        images = images if isinstance(images, list) else [images]
        if convert_to_rgb:
            images = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
        width, height = images[0].size
        rows, cols = self.smart_resize(height, width, patch * stride, min_pixels, max_pixels)
        size = {"height": rows, "width": cols}
        frames = np.stack(
            [ip.preprocess(im, size=size, return_tensors="np")["pixel_values"][0] for im in images]
        )
        if len(frames) % frames_per_patch:  # repeat the last frame up to a whole patch
            extra = frames_per_patch - len(frames) % frames_per_patch
            frames = np.concatenate([frames, np.repeat(frames[-1:], extra, axis=0)])
        t, channels = len(frames) // frames_per_patch, frames.shape[1]
        gh, gw = rows // patch, cols // patch
        # each hidden_stride x hidden_stride window of patches contiguous (merged in encode)
        grid = torch.from_numpy(frames).reshape(
            t, frames_per_patch, channels, gh // stride, stride, patch, gw // stride, stride, patch
        )
        grid = grid.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        flat = grid.reshape(t * gh * gw, channels * frames_per_patch * patch * patch)
        kind = "video" if multimodal_type == "video" else "image"
        placeholders = self.construct_image_placeholders((1, 1), data_type=kind)
        return flat.contiguous(), torch.tensor([[t, gh, gw]]), placeholders

    def encode(self, pixel_values: torch.Tensor, grid_thws: torch.Tensor) -> torch.Tensor:
        out = self.backbone(pixel_values, grid_thws, output_hidden_states=True, return_dict=True)
        features = out.hidden_states[-1]
        return features.reshape(features.shape[0] // self.config.hidden_stride**2, -1)

    def forward(self, pixel_values: torch.Tensor, grid_thws: torch.Tensor) -> torch.Tensor:
        tokens = self.tokenize(self.head(self.encode(pixel_values, grid_thws)))
        indicators = tokens.new_zeros(tokens.shape[0], len(IMAGE_INDICATOR_IDS))
        return torch.cat([tokens, indicators], dim=1)  # [#tokens, vocab_size]


AutoModel.register(Aimv2VisualTokenizerConfig, Aimv2VisualTokenizer)
AutoConfig.register("yak", YakConfig)
AutoModel.register(YakConfig, YakModel)


class VisualEmbedding(torch.nn.Embedding):
    """Token ids as an embedding lookup; visual token distributions as their mixture."""

    def forward(self, visual_tokens: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(visual_tokens):
            return super().forward(visual_tokens)
        return torch.matmul(visual_tokens, self.weight)


class OvisU1PreTrainedModel(PreTrainedModel):
    config_class = OvisU1Config
    base_model_prefix = "ovis_u1"


class OvisU1(OvisU1PreTrainedModel):
    def __init__(self, config: OvisU1Config, *inputs: Any, **kwargs: Any) -> None:
        super().__init__(config, *inputs, **kwargs)
        attn = {}
        if self.config.llm_attn_implementation:
            attn["attn_implementation"] = self.config.llm_attn_implementation
        self.llm = AutoModelForCausalLM.from_config(self.config.llm_config, **attn)
        assert self.config.hidden_size == self.llm.config.hidden_size, "hidden size mismatch"
        self.text_tokenizer = AutoTokenizer.from_pretrained(self.config.name_or_path)
        self.visual_tokenizer = AutoModel.from_config(
            self.config.visual_tokenizer_config,
            image_processor_name_or_path=self.config.name_or_path,
        )
        self.visual_generator = AutoModel.from_config(self.config.visual_generator_config)
        self.vte = VisualEmbedding(
            self.config.visual_tokenizer_config.vocab_size,
            self.config.hidden_size,
            device=self.visual_tokenizer.device,
            dtype=self.visual_tokenizer.dtype,
        )
        self._no_split_modules = [
            *(self.llm._no_split_modules or []),
            *(self.visual_tokenizer._no_split_modules or []),
        ]

    def get_text_tokenizer(self) -> Any:
        return self.text_tokenizer

    def get_visual_tokenizer(self) -> Aimv2VisualTokenizer:
        return self.visual_tokenizer

    def get_visual_generator(self) -> YakModel:
        return self.visual_generator

    def get_llm(self) -> PreTrainedModel:
        return self.llm

    def get_vte(self) -> VisualEmbedding:
        return self.vte

    def get_wte(self) -> torch.nn.Module:
        return self.llm.get_input_embeddings()

    def get_lm_head(self) -> torch.nn.Module:
        return self.llm.get_output_embeddings()

    def tie_weights(self) -> None:
        if not self.config.disable_tie_weight:
            self.get_llm().tie_weights()

    def get_conversation_formatter(self) -> ConversationFormatter:
        if getattr(self, "conversation_formatter", None) is None:
            module = import_module(".configuration_ovis_u1", __package__)
            formatter = getattr(module, self.config.conversation_formatter_class)
            self.conversation_formatter = formatter(self.text_tokenizer)
        return self.conversation_formatter

    def merge_multimodal(
        self,
        text_input_ids: torch.Tensor,
        text_attention_masks: torch.Tensor,
        text_labels: torch.Tensor | None,
        pixel_values: torch.Tensor | None,
        grid_thws: torch.Tensor | None,
        left_padding: bool = False,
    ) -> tuple:
        device = text_input_ids.device
        vocab = self.visual_tokenizer.config.vocab_size
        first = vocab - len(IMAGE_INDICATOR_IDS)
        indicators = self.vte(torch.arange(first, vocab, device=self.vte.weight.device))
        indicators = indicators.to(device)
        stride = self.visual_tokenizer.config.hidden_stride
        counts = [int(g.prod()) // stride**2 for g in grid_thws] if grid_thws is not None else []
        visual_embeds, visual_ids = [], []
        if sum(counts):
            tokens = self.visual_tokenizer(pixel_values, grid_thws)
            embeds = self.vte(tokens).to(dtype=self.dtype, device=device)
            visual_embeds = list(embeds.split(counts))
            visual_ids = list(tokens.argmax(dim=-1).to(device).split(counts))
        if text_labels is None:
            text_labels = torch.full_like(text_input_ids, IGNORE_ID)
        pending = iter(visual_embeds)
        all_embeds, all_masks, all_labels, all_flags = [], [], [], []
        for ids, mask, labels in zip(text_input_ids, text_attention_masks, text_labels):
            text = self.get_wte()(ids.clamp(min=0))  # placeholders (< 0) are replaced below
            for i, indicator in enumerate(IMAGE_INDICATOR_IDS):
                text[ids == indicator] = indicators[i]
            parts: list[tuple] = []
            start = 0
            for atom in torch.nonzero(ids == IMAGE_ATOM_ID).flatten().tolist():
                image = next(pending)
                parts.append((text[start:atom], mask[start:atom], labels[start:atom], 0))
                ones = torch.ones(len(image), dtype=torch.bool, device=device)
                parts.append((image, ones, torch.full_like(ones, IGNORE_ID, dtype=torch.long), 1))
                start = atom + 1
            parts.append((text[start:], mask[start:], labels[start:], 0))
            all_embeds.append(torch.cat([p[0] for p in parts]))
            all_masks.append(torch.cat([p[1].bool() for p in parts]))
            all_labels.append(torch.cat([p[2] for p in parts]))
            all_flags.append(torch.cat([torch.full_like(p[2], p[3]) for p in parts]))
        pad = self.pad_truncate_sequence
        return (
            visual_ids,
            pad(all_embeds, padding_value=0.0, left_padding=left_padding),
            pad(all_labels, padding_value=IGNORE_ID, left_padding=left_padding),
            pad(all_masks, padding_value=False, left_padding=left_padding),
            pad(all_flags, padding_value=0, left_padding=left_padding),
        )

    def pad_truncate_sequence(
        self,
        sequences: list[torch.Tensor],
        batch_first: bool = True,
        padding_value: float = 0.0,
        left_padding: bool = False,
    ) -> torch.Tensor:
        limit = self.config.multimodal_max_length
        pad = torch.nn.utils.rnn.pad_sequence
        if not left_padding:
            return pad(sequences, batch_first=True, padding_value=padding_value)[:, :limit]
        flipped = pad([s.flip(0) for s in sequences], batch_first=True, padding_value=padding_value)
        return flipped.flip(1)[:, -limit:]

    def preprocess_inputs(
        self,
        text_or_conversations: list[dict] | str,
        images: list[PIL.Image.Image] | None,
        generation_preface: str | None = "",
        return_labels: bool = False,
        propagate_exception: bool = True,
        frame_selector: Any = None,
        multimodal_type: str = "single_image",
        fix_sample_overall_length_navit: bool = False,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        enable_thinking: bool = False,
    ) -> tuple:
        if isinstance(text_or_conversations, str):
            conversations = [{"from": "human", "value": text_or_conversations}]
        elif isinstance(text_or_conversations, list):
            conversations = text_or_conversations
        else:
            raise ValueError(
                f"expected a list of dicts or a str, got {type(text_or_conversations)}"
            )
        if frame_selector is not None:
            conversations, images = frame_selector(
                conversations=conversations, frames=images, clear_prompt=True
            )
        prompt, raw_ids, raw_labels = self.get_conversation_formatter().format(
            conversations, generation_preface=generation_preface, enable_thinking=enable_thinking
        )
        input_ids, labels, pixel_values, grid_thws = [], [], [], []
        invalid, seen = False, 0
        for token, label in zip(raw_ids, raw_labels):
            if token not in (IMAGE_TOKEN_ID, VIDEO_TOKEN_ID):
                input_ids.append(token)
                labels.append(label)
                continue
            image = images if multimodal_type == "video" else images[seen]
            seen += 1
            count = len(images) if fix_sample_overall_length_navit else 1
            try:
                patches, grid, placeholders = self.visual_tokenizer.preprocess_image(
                    image,
                    num_images=count,
                    min_pixels=min_pixels,
                    max_pixels=max_pixels,
                    multimodal_type=multimodal_type,
                )
            except Exception as exc:  # the real code's fallback: a blank mock image
                if propagate_exception:
                    raise
                logging.exception(exc)
                invalid = True
                blank = PIL.Image.new("RGB", self.visual_tokenizer.get_min_image_size()[::-1])
                patches, grid, placeholders = self.visual_tokenizer.preprocess_image(blank)
            input_ids.extend(placeholders)
            labels.extend([IGNORE_ID] * len(placeholders))
            pixel_values.append(patches)
            grid_thws.append(grid)
        input_ids = torch.tensor(input_ids, dtype=torch.long)
        labels = torch.tensor([IGNORE_ID] * len(labels) if invalid else labels, dtype=torch.long)
        pixels = torch.cat(pixel_values) if pixel_values else None
        grids = torch.cat(grid_thws) if grid_thws else None
        if return_labels:
            return prompt, input_ids, pixels, grids, labels
        return prompt, input_ids, pixels, grids

    def _merged(self, inputs: torch.Tensor | None, kwargs: dict[str, Any]) -> tuple:
        """merge_multimodal of the text and the images a generate call is given (popped)."""
        _, embeds, labels, mask, _ = self.merge_multimodal(
            text_input_ids=inputs,
            text_attention_masks=kwargs.pop("attention_mask"),
            text_labels=None,
            pixel_values=kwargs.pop("pixel_values"),
            grid_thws=kwargs.pop("grid_thws"),
            left_padding=True,
        )
        return embeds, labels, mask

    def generate(self, inputs: torch.Tensor | None = None, **kwargs: Any) -> Any:
        embeds, _, mask = self._merged(inputs, kwargs)
        return self.llm.generate(
            inputs=None, inputs_embeds=embeds.detach(), attention_mask=mask, **kwargs
        )

    def generate_condition(self, inputs: torch.Tensor | None = None, **kwargs: Any) -> dict:
        embeds, labels, mask = self._merged(inputs, kwargs)
        device = self.llm.device
        outputs = self.llm(
            inputs_embeds=embeds.detach().to(device),
            labels=labels.to(device),
            attention_mask=mask.to(device),
            output_hidden_states=True,
            **kwargs,
        )
        last, before = outputs.hidden_states[-1], outputs.hidden_states[-2]
        return {"txt": torch.cat([last, before], dim=-1)}

    def generate_img(
        self,
        inputs: torch.Tensor | None = None,
        cond: dict | None = None,
        no_both_cond: dict | None = None,
        no_txt_cond: dict | None = None,
        **kwargs: Any,
    ) -> Any:
        if cond is None:
            cond = self.generate_condition(inputs, **kwargs)
        return self.visual_generator.generate_image(
            cond=cond,
            no_txt_cond=no_txt_cond,
            no_both_cond=no_both_cond,
            height=kwargs.get("height", 1024),
            width=kwargs.get("width", 1024),
            num_steps=kwargs.get("num_steps", 50),
            seed=kwargs.get("seed", 42),
            img_cfg=kwargs.pop("img_cfg", 1.5),
            txt_cfg=kwargs.pop("txt_cfg", 5),
            output_type="pil",
        )
