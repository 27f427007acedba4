"""Tiny VLMs trained for the demo: a judge and a refiner that answer in reedit's real formats.

Random weights answer nothing parseable. These recipes build the tiny Qwen3-VL / Qwen2.5-VL of
:mod:`reedit.testing.vlms` and give them 35-45 s of deterministic CPU training, asked with reedit's
real prompts (``prompt_version`` v1): an edited image that is a drawn scene gets "yes" and high
scores and a critique asking for polish; an edited image that is noise (what the demo's
random-weight editors produce) gets "no", low scores and a critique asking to restore the scene.
The demo's numbers then follow what the editor did, and every stage's parser reads real model
output. The texts never tell the answer: each (source, made-up instruction, description,
rationale, category) is trained with both a scene and a noise edit, so the model has to look at
the edited image (with a fixed list of instructions it learnt the instructions instead).

What makes it learn in under a minute (each measured: without it the models answered the same
for every image, or garbled): a tokenizer trained on the prompts as well (shorter prompts), 256x256
images seen at full resolution (64 tokens each), patch filters built to see noise (checkerboard
kernels with random signs: flat colour and straight edges cancel out, pixel noise does not) and
kept frozen with the rest of the vision blocks (training them collapsed the image features), a
short warm-up on "scene or noise?", fresh images for every example (a few images are memorised
instead of read), and batches of 4.

Built once and cached like the other tiny models: ``tiny:qwen3_vl_judge``,
``tiny:qwen25_vl_refiner`` (``<REEDIT_CACHE or ~/.cache/reedit>/tiny/<name>-v<VERSION>``).
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

VERSION = 1


@dataclass(frozen=True)
class Recipe:
    base: str  # a reedit.testing.vlms.FAMILIES name
    kind: str  # judge | refiner
    groups: int  # (source, instruction, category) groups, each with a scene and a noise edit
    steps: int
    batch_size: int
    seed: int  # weights, images and example order


# Measured on the demo's 10 records (their real texts) with 45 edits: each scene kept as its own
# edit, a fresh drawn scene, fresh noise, and the real tiny Qwen-Image-Edit and FLUX.2 outputs
# (judge: x3 metrics = 135 checks). Refiner, batch 4 x 200 steps: seeds 0-2 got 45, 44, 42 of 45
# (batch 1 x 400 steps: 44 and 21, with 13 garbled critiques). Judge, batch 4 x 300 steps: seeds
# 0-3 got 131, 132, 114, 119 of 135 (450 steps: seeds 2, 3 got 126, 121; batch 1, fewer steps or
# a higher lr were worse). The judge's shipped seed misses only the demo's brick wall (a good
# picture judged noisy); seed 0 judged some noise a good picture.
RECIPES = {
    "qwen3_vl_judge": Recipe("qwen3_vl", "judge", groups=100, steps=300, batch_size=4, seed=1),
    "qwen25_vl_refiner": Recipe(
        "qwen25_vl", "refiner", groups=100, steps=200, batch_size=4, seed=0
    ),
}
WARMUP_STEPS = 200
WARMUP_QUESTION = "Is the image a scene or noise?"
LR = 3e-3
VOCAB = 2048
MAX_PIXELS = 256 * 256  # demo images at full resolution
HIGH_PASS_SCALE = 0.3

JUDGE_GOOD = {"dimension": {"score": "yes"}, "if": {"score": 8}, "sc": {"score": [8, 9]}}
JUDGE_BAD = {"dimension": {"score": "no"}, "if": {"score": 1}, "sc": {"score": [1, 0]}}
CRITIQUE_GOOD = (
    "<CoT>The edit keeps the scene plausible.</CoT>\n"
    "<Re_edit>Improve the overall image quality.</Re_edit>"
)
CRITIQUE_BAD = (
    "<CoT>The edited image is noise: the scene is lost.</CoT>\n"
    "<Re_edit>Restore the original scene.</Re_edit>"
)
CATEGORIES = ("physical", "environmental", "cultural", "causal", "referential")
_THINGS = (
    "lamp",
    "ball",
    "glass of water",
    "house",
    "tree",
    "street",
    "car",
    "door",
    "candle",
    "ice cube",
    "table",
    "plate",
    "chopsticks",
    "circle",
    "box",
    "window",
    "sky",
    "sun",
    "road",
    "wall",
    "cup",
)
_PLACES = ("on the left", "on the right", "in the middle", "at the back", "on the table", "outside")
_TIMES = ("at night", "an hour later", "in winter", "after the rain", "in the morning", "at noon")


def _instruction(rng: random.Random) -> str:
    """A made-up edit instruction: the model must learn that the words do not decide."""
    thing, other = rng.choice(_THINGS), rng.choice(_THINGS)
    return rng.choice(
        (
            f"Move the {thing} {rng.choice(_PLACES)}.",
            f"Show the {thing} {rng.choice(_TIMES)}.",
            f"Remove the {thing} and keep the {other}.",
            f"Make the {thing} {rng.choice(('red', 'yellow', 'blue', 'smaller', 'bigger'))}.",
            f"Put a {thing} next to the {other}, {rng.choice(_TIMES)}.",
            f"Replace the {thing} with the {other} that someone would use here.",
            f"Open the {thing}.",
            f"What would the {thing} look like {rng.choice(_TIMES)}? Show it.",
        )
    )


def _description(rng: random.Random) -> str:
    thing, other = rng.choice(_THINGS), rng.choice(_THINGS)
    return f"A {thing} stands {rng.choice(_PLACES)} next to a {other}."


def _rationale(rng: random.Random) -> str:
    thing = rng.choice(_THINGS)
    return f"The {thing} must change as it would {rng.choice(_TIMES)}; the rest stays the same."


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def scene(rng: random.Random, size: tuple[int, int]):
    """A flat-shaded drawing like the demo's: ground, shapes, lines, rows of small boxes."""
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", size, tuple(rng.randrange(60, 256) for _ in range(3)))
    d = ImageDraw.Draw(img)
    if rng.random() < 0.6:
        d.rectangle((0, rng.randrange(h // 3, h), w, h), fill=_colour(rng))
    if rng.random() < 0.5:  # windows, bricks, planks: structured detail is not noise
        wall = rng.random() < 0.4  # a whole wall of staggered bricks with thin mortar
        x0, y0 = (0, 0) if wall else (rng.randrange(w // 2), rng.randrange(h // 2))
        cw, ch = rng.randrange(6, 24), rng.randrange(4, 20)
        gap, fill = rng.randrange(1, 3) if wall else rng.randrange(2, 8), _colour(rng)
        for row, y in enumerate(range(y0, min(h, y0 + rng.randrange(h // 4, h + 1)), ch + gap)):
            shift = (cw + gap) // 2 if wall and row % 2 else 0
            for x in range(x0 - shift, min(w, x0 + rng.randrange(w // 4, w + 1)), cw + gap):
                d.rectangle((x, y, x + cw, y + ch), fill=fill)
    for _ in range(rng.randrange(0, 4)):
        points = [(rng.randrange(w), rng.randrange(h)) for _ in range(2 + rng.randrange(3))]
        d.line(points, fill=_colour(rng), width=rng.randrange(1, 8))
    for _ in range(rng.randrange(1, 7)):
        x, y = rng.randrange(w - 8), rng.randrange(h - 8)
        box = (x, y, x + rng.randrange(8, w // 2), y + rng.randrange(8, h // 2))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=_colour(rng))
    return img


def noise(rng: random.Random, size: tuple[int, int]):
    """What random-weight editors produce: fine coloured noise around a random mean (std ~20 for
    the tiny Qwen-Image-Edit), often with coarser blotches and streaks (the tiny FLUX.2)."""
    import numpy as np
    from PIL import Image, ImageFilter

    g = np.random.default_rng(rng.randrange(1 << 30))
    w, h = size
    mean, std = g.uniform(60, 200, 3), g.uniform(8, 80)
    pixels = mean + std * g.standard_normal((h, w, 3))
    if rng.random() < 0.5:  # blotches: coarse noise, upsampled, in a few strong colours
        cell = rng.choice((2, 4, 8))
        coarse = g.standard_normal((h // cell + 1, w // cell + 1, 3)) * g.uniform(20, 90)
        pixels += np.kron(coarse, np.ones((cell, cell, 1)))[:h, :w]
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(0.7)) if rng.random() < 0.2 else img


def _size(rng: random.Random) -> tuple[int, int]:
    if rng.random() < 0.6:
        return (256, 256)
    return rng.choice([(256, 192), (192, 256), (128, 128)])


def _images(folder: Path, n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    scenes, noises = [], []
    for i in range(n):
        size = _size(rng)
        scenes.append(str(folder / f"scene{i}.png"))
        scene(rng, size).save(scenes[-1])
        noises.append(str(folder / f"noise{i}.png"))
        noise(rng, size).save(noises[-1])
    return scenes, noises


def warmup_pairs(folder: Path, rng: random.Random, n: int = 32) -> list[tuple[list[dict], str]]:
    """One image, "Is the image a scene or noise?": teaches the model to read the image first."""
    from reedit.models.vlm.transformers_vl import to_hf_messages

    scenes, noises = _images(folder, n, rng)
    out = []
    for path, target in [(p, "scene") for p in scenes] + [(p, "noise") for p in noises]:
        question = {"type": "text", "text": WARMUP_QUESTION}
        # images as PIL (as the backend gives them): a path is decoded by torchvision, deprecated
        conv = [{"role": "user", "content": [{"type": "image", "path": path}, question]}]
        out.append((to_hf_messages(conv), target))
    return out


def pairs(kind: str, folder: Path, rng: random.Random, groups: int) -> list[tuple[list[dict], str]]:
    """(conversation, target) pairs asked with reedit's real prompts, scene and noise per group."""
    from reedit.judge import Judge, JudgeRequest
    from reedit.models.vlm.transformers_vl import to_hf_messages
    from reedit.refiner import CritiqueRequest, Refiner

    refiner = Refiner(prompt_version="v1")  # no backend: it only builds the prompts
    judge = Judge(prompt_version="v1", metrics=list(JUDGE_GOOD), cache=False)
    scenes, noises = _images(folder, groups, rng)
    out = []
    for g in range(groups):
        source = scenes[g]
        good = source if g % 3 == 0 else scenes[(g + 1) % groups]  # identity or another scene
        instruction, description, rationale = _instruction(rng), _description(rng), _rationale(rng)
        category = CATEGORIES[g % len(CATEGORIES)]
        for edited, is_noise in ((good, False), (noises[g], True)):
            if kind == "refiner":
                conv = refiner.conversation(CritiqueRequest("k", source, edited, instruction))
                out.append((to_hf_messages(conv), CRITIQUE_BAD if is_noise else CRITIQUE_GOOD))
                continue
            for metric in JUDGE_GOOD:
                req = JudgeRequest(
                    "k", metric, category, source, edited, instruction, description, rationale
                )
                target = (JUDGE_BAD if is_noise else JUDGE_GOOD)[metric]
                out.append((to_hf_messages(judge.conversation(req)), json.dumps(target)))
    return out


def _frozen(name: str) -> bool:
    """The vision blocks and patch filters stay as built; the merger and the LLM learn."""
    return ".visual." in f".{name}" and "merger" not in name


def _high_pass(folder: Path, seed: int) -> None:
    """Checkerboard patch filters with random signs: flat colour and straight edges cancel out,
    pixel noise does not, so the patch features measure noise from the start."""
    import torch
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32)
    weight = model.model.visual.patch_embed.proj.weight  # (out, rgb, time, patch, patch)
    generator = torch.Generator().manual_seed(seed)
    i = torch.arange(weight.shape[-1])
    checker = ((i[:, None] + i[None, :]) % 2 * 2 - 1).float()
    signs = torch.randn(weight.shape[:3] + (1, 1), generator=generator).sign()
    with torch.no_grad():
        weight.copy_(signs * checker * HIGH_PASS_SCALE)
    model.save_pretrained(folder)


def train(name: str, path: str | Path, seed: int | None = None) -> Path:
    """Build and train recipe ``name`` at ``path`` (35-45 s on one CPU thread).

    ``seed`` (default: the recipe's) drives the initial weights, the images and the order."""
    from reedit.prompts import templates
    from reedit.testing.vlms import build_vlm, finetune

    recipe = RECIPES[name]
    seed = recipe.seed if seed is None else seed
    path = Path(path)
    corpus = templates("v1")
    build_vlm(recipe.base, path, seed, extra_corpus=corpus, vocab_size=VOCAB, max_pixels=MAX_PIXELS)
    _high_pass(path, seed)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="reedit-tiny-train-") as tmp:
        warmup = warmup_pairs(Path(tmp), rng)
        finetune(path, warmup, steps=WARMUP_STEPS, lr=LR, seed=seed, frozen=_frozen)
        main = pairs(recipe.kind, Path(tmp), rng, recipe.groups)
        finetune(path, main, recipe.steps, LR, seed, frozen=_frozen, batch_size=recipe.batch_size)
    return path


def signature(name: str) -> str:
    """Changes with the recipe, its training constants or VERSION (bump it when the code that
    draws the images or builds the examples changes): a cached model with another one is rebuilt."""
    import hashlib

    from reedit.testing.vlms import source_fingerprint

    parts = (
        VERSION,
        source_fingerprint(),  # the random model it starts from
        RECIPES[name],
        WARMUP_STEPS,
        WARMUP_QUESTION,
        LR,
        VOCAB,
        MAX_PIXELS,
        HIGH_PASS_SCALE,
        JUDGE_GOOD,
        JUDGE_BAD,
        CRITIQUE_GOOD,
        CRITIQUE_BAD,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def ensure_trained(name: str, root: str | os.PathLike | None = None) -> Path:
    """The cached trained ``name``, built and trained on first use (and when its recipe
    changed: :func:`signature`)."""
    from reedit.testing.vlms import ensure_built

    if name not in RECIPES:
        raise ValueError(f"unknown trained tiny VLM {name!r}; expected one of {', '.join(RECIPES)}")

    def build(folder: Path) -> None:
        log.info(
            "training the tiny %s once (under a minute on the CPU; cached for later runs)", name
        )
        train(name, folder)

    return ensure_built(name, build, signature(name), root)
