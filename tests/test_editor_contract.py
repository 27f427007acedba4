"""The editor contract: every editor (the four diffusers adapters on tiny random weights built
locally, identity and precomputed) honours the same promises."""

from __future__ import annotations

import os
import socket

import pytest
from PIL import Image

from reedit.config import instantiate
from reedit.models.base import EditRequest
from reedit.testing import locate

DIFFUSERS = ["tiny_qwen_image_edit", "tiny_qwen_image_edit_2511", "tiny_flux_kontext", "tiny_flux2"]
EDITORS = ["identity", "precomputed", *DIFFUSERS]
SIZE = (96, 64)  # (width, height) every editor is asked to return: the input size here
COLORS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]


def request(i: int, seed: int = 1, instruction: str = "make the square red", size=SIZE):
    img = Image.new("RGB", size, COLORS[i % 4])
    img.paste((255, 255, 255), (10, 10, 30, 30))
    return EditRequest(f"s{i}", f"s{i}", "physical", img, instruction, seed)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection attempt fails the test."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r:.200}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield attempts
    assert not attempts


@pytest.fixture(scope="module", params=EDITORS)
def editor(request, tmp_path_factory):
    from hydra import compose, initialize_config_dir

    from reedit.cli import config_dir

    name = request.param
    overrides = [f"model={name}"]
    if name == "precomputed":
        folder = tmp_path_factory.mktemp("precomputed")
        (folder / "physical").mkdir()
        for i in range(4):
            request_ = globals()["request"](i)
            request_.image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
                folder / "physical" / f"s{i}.png"
            )
        overrides.append(f"model.images_dir={folder}")
    if name in DIFFUSERS:  # small outputs keep the tiny pipelines fast on a CPU
        overrides += [f"model.height={SIZE[1]}", f"model.width={SIZE[0]}"]
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    ed = instantiate(cfg.model, what="model", locate=locate)
    ed.name = name
    ed.load()
    yield ed
    ed.close()


def seeded(editor) -> bool:
    return editor.name in DIFFUSERS


def test_offline_environment():
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_output_is_rgb_of_the_promised_size(editor):
    (res,) = editor.edit([request(0)])
    assert res.ok, res.error
    assert res.image.mode == "RGB" and res.image.size == SIZE
    assert res.seconds > 0


def test_same_seed_same_output_different_seed_different(editor):
    a, b, c = editor.edit([request(0, seed=3), request(0, seed=3), request(0, seed=4)])
    assert a.image.tobytes() == b.image.tobytes()
    if seeded(editor):
        assert a.image.tobytes() != c.image.tobytes()
    else:  # identity and precomputed do not sample: the seed cannot matter
        assert a.image.tobytes() == c.image.tobytes()


def test_batch_gives_one_image_per_request_in_order(editor):
    singles = [editor.edit([request(i)])[0].image.tobytes() for i in range(3)]
    batch = editor.edit([request(i) for i in range(3)])
    assert [r.image.tobytes() for r in batch] == singles
    assert len(set(singles)) == 3


def test_bad_requests_are_per_sample_errors(editor):
    empty = request(1, instruction="   ")
    zero = request(2)
    zero.image = Image.new("RGB", (0, 0))
    good, bad1, bad2, good2 = editor.edit([request(0), empty, zero, request(3)])
    assert good.ok and good2.ok
    assert (bad1.error_type, bad2.error_type) == ("InvalidRequest", "InvalidRequest")
    assert bad1.image is None and bad2.image is None


def test_close_frees_and_load_works_again(editor):
    before = editor.edit([request(0)])[0].image.tobytes()
    editor.close()
    assert not editor.loaded
    if seeded(editor):
        assert editor.pipe is None
    editor.load()
    assert editor.edit([request(0)])[0].image.tobytes() == before


def test_info_states_the_output_size_policy(editor):
    assert isinstance(editor.info()["resize_output_to_input"], bool)


class DetailingEditor:
    """Test double: an editor whose model says something about each edit (as DreamOmni2 gives
    its rewritten prompt) and whose failures carry what it said (an unparsable answer)."""

    @staticmethod
    def make():
        from reedit.models.base import Edited, Editor

        class Detailing(Editor):
            def _edit(self, requests):
                out = []
                for req in requests:
                    if "nothing" in req.instruction:  # the model answered, but with no image
                        out.append(Edited(None, {"prompt": req.instruction}))
                        continue
                    if "fail" in req.instruction:
                        error = ValueError(f"{req.sample_id}: cannot parse")
                        error.details = {"answer": req.instruction}
                        raise error
                    out.append(Edited(req.image, {"prompt": req.instruction.upper()}))
                return out

        return Detailing()


def test_what_a_model_says_about_an_edit_is_its_results_details():
    from reedit.models.base import StepsRequest

    editor = DetailingEditor.make()
    ok, failed = editor.edit(
        [request(0, instruction="make it red"), request(1, instruction="fail")]
    )
    assert ok.ok and ok.details == {"prompt": "MAKE IT RED"}
    assert not failed.ok and failed.details == {"answer": "fail"}  # nothing substituted
    (empty,) = editor.edit([request(3, instruction="make nothing")])
    assert empty.error_type == "InvalidOutput" and empty.details == {"prompt": "make nothing"}
    img = request(2).image
    one, two, broken = editor.edit_steps(
        [
            StepsRequest("a", "a", "physical", img, ["red"], [1]),
            StepsRequest("b", "b", "physical", img, ["red", "blue"], [1, 2]),
            StepsRequest("c", "c", "physical", img, ["red", "fail"], [1, 2]),
        ]
    )
    assert one.details == {"prompt": "RED"}  # one step: its details as they are
    assert two.details == {"steps": [{"prompt": "RED"}, {"prompt": "BLUE"}]}
    assert not broken.ok and broken.details == {"steps": [{"prompt": "RED"}, {"answer": "fail"}]}
