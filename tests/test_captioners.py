"""Captioners on real images: tiny random BLIP-2/LLaVA through the real backends, the openai
captioner over HTTP, and the content-hash caption cache."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading

import pytest
from PIL import Image

from tests.conftest import make_image
from tests.fake_openai import Reply
import visdiff
from visdiff import captioning
from visdiff.captioners import create_captioner, list_captioners
from visdiff.errors import BackendError, ServiceError
from visdiff.llm import RequestPool, image_content

# Fixtures: fake_openai (scripted OpenAI-compatible server), tiny_* model folders.
pytest_plugins = ["tests.captioner_fixtures", "tests.fake_openai"]

MAX_NEW = 4


@pytest.fixture
def images():
    return [Image.new("RGB", (48, 40), color) for color in [(200, 30, 30), (30, 200, 30), (30, 30, 200)]]


@pytest.fixture
def folder(tmp_path):
    for i in range(5):
        make_image(tmp_path / "imgs" / f"{i}.png", (40 * i, 100, 200 - 30 * i), noise_seed=i)
    return tmp_path / "imgs"


class CountingCaptioner:
    """Wraps a captioner and records the size of every batch it is asked to caption."""

    def __init__(self, inner):
        self.inner = inner
        self.spec = inner.spec
        self.cache_id = inner.cache_id
        self.batches: list[int] = []

    def caption_images(self, images):
        self.batches.append(len(images))
        return self.inner.caption_images(images)


def test_backends_are_registered():
    assert {"blip2", "llava", "hf", "openai"} <= set(list_captioners())


@pytest.mark.parametrize("fixture", ["tiny_blip2_opt", "tiny_blip2_t5"])
def test_blip2_captions_each_image_and_cuts_the_prompt(fixture, request, images):
    captioner = create_captioner(f"blip2:{request.getfixturevalue(fixture)}", max_new_tokens=MAX_NEW)
    assert captioner.prompt_text == "Describe this image in detail."
    captions = captioner.caption_images(images)
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    # Word-level tokenizer, special tokens suppressed: exactly one word per new token. An
    # echoed prompt would add its 5 words.
    assert all(len(c.split()) == MAX_NEW for c in captions)


def test_batched_generation_matches_one_by_one(tiny_blip2_opt, images):
    captioner = create_captioner(f"blip2:{tiny_blip2_opt}", max_new_tokens=MAX_NEW)
    assert captioner.caption_images(images) == [captioner.caption_images([im])[0] for im in images]
    assert captioner.caption_images([]) == []


def test_llava_uses_the_chat_template(tiny_llava, images):
    captioner = create_captioner(f"llava:{tiny_llava}", max_new_tokens=MAX_NEW, prompt="describe this image")
    assert captioner.prompt_text == "USER: <image> describe this image ASSISTANT:"
    captions = captioner.caption_images(images)
    assert len(captions) == 3 and all(len(c.split()) == MAX_NEW for c in captions)
    assert captioner.caption_images(images[:1]) == captions[:1]


def test_llava_without_chat_template_uses_the_llava_format(tiny_llava, tmp_path, images):
    folder = shutil.copytree(tiny_llava, tmp_path / "llava")
    (folder / "chat_template.jinja").unlink()
    captioner = create_captioner(f"llava:{folder}", max_new_tokens=MAX_NEW, prompt="describe this image")
    assert captioner.prompt_text == "USER: <image>\ndescribe this image ASSISTANT:"
    assert len(captioner.caption_images(images)) == 3


def test_generic_hf_backend_captions_without_prompt(tiny_blip2_opt, images):
    captioner = create_captioner(f"hf:{tiny_blip2_opt}", max_new_tokens=MAX_NEW)
    assert type(captioner.model).__name__ == "Blip2ForConditionalGeneration"
    assert captioner.prompt_text == ""
    assert len(captioner.caption_images(images)) == 3


def test_cache_id_names_model_prompt_and_generation_settings(tiny_blip2_opt):
    base = json.loads(create_captioner(f"blip2:{tiny_blip2_opt}", max_new_tokens=MAX_NEW).cache_id)
    assert base["model"] == str(tiny_blip2_opt) and base["max_new_tokens"] == MAX_NEW
    assert base["prompt"] == "Describe this image in detail." and base["dtype"] == "float32"
    other = json.loads(create_captioner(f"blip2:{tiny_blip2_opt}", max_new_tokens=MAX_NEW, prompt="a photo of").cache_id)
    assert other["prompt"] == "a photo of" and other != base


def test_unloadable_model_is_a_backend_error(tmp_path):
    # Built without loading (a cached or dry run loads no weights); the first caption says why it cannot.
    captioner = create_captioner(f"blip2:{tmp_path / 'empty'}")
    with pytest.raises(BackendError, match="cannot load blip2 model"):
        captioner.caption_images([Image.new("RGB", (8, 8))])
    with pytest.raises(BackendError, match="needs a model id"):
        create_captioner("hf")


def test_caption_api_caches_by_content_and_batches(tiny_blip2_opt, folder):
    captioner = CountingCaptioner(create_captioner(f"blip2:{tiny_blip2_opt}", max_new_tokens=MAX_NEW))
    first = visdiff.caption(folder, captioner=captioner, caption_batch_size=2)
    assert list(first.columns) == ["source", "sha256", "caption"] and len(first) == 5
    assert captioner.batches == [2, 2, 1]
    assert first.attrs["captions"]["captioned"] == 5 and first.attrs["captions"]["cached"] == 0
    # A rerun (any batch size) captions nothing; a renamed copy of an image is a cache hit.
    shutil.copy(folder / "0.png", folder / "renamed.png")
    second = visdiff.caption(folder, captioner=captioner, caption_batch_size=4)
    assert captioner.batches == [2, 2, 1]
    assert second.attrs["captions"] == {**second.attrs["captions"], "captioned": 0, "cached": 5}
    assert len(second) == 6 and dict(zip(second.sha256, second.caption, strict=True)) == dict(zip(first.sha256, first.caption, strict=True))
    # Another prompt is another cache entry.
    reprompted = CountingCaptioner(create_captioner(f"blip2:{tiny_blip2_opt}", max_new_tokens=MAX_NEW, prompt="a photo of"))
    visdiff.caption(folder, captioner=reprompted)
    assert reprompted.batches == [5]


def test_a_run_served_from_the_cache_loads_no_weights(tiny_blip2_opt, folder, monkeypatch):
    import visdiff.captioners.hf as hf

    visdiff.caption(folder, captioner=create_captioner(f"blip2:{tiny_blip2_opt}", max_new_tokens=MAX_NEW))
    monkeypatch.setattr(hf, "load_vision_language_model", lambda *a, **k: pytest.fail("weights loaded for cached captions"))
    again = create_captioner(f"blip2:{tiny_blip2_opt}", max_new_tokens=MAX_NEW)
    assert visdiff.caption(folder, captioner=again).attrs["captions"]["cached"] == 5


def test_bumping_the_cache_version_invalidates(tiny_blip2_opt, folder, monkeypatch):
    captioner = CountingCaptioner(create_captioner(f"blip2:{tiny_blip2_opt}", max_new_tokens=MAX_NEW))
    visdiff.caption(folder, captioner=captioner)
    monkeypatch.setattr(captioning, "CAPTION_CACHE_VERSION", captioning.CAPTION_CACHE_VERSION + 1)
    visdiff.caption(folder, captioner=captioner)
    assert captioner.batches == [5, 5]


def test_no_cache_recaptions(tiny_blip2_opt, folder):
    captioner = CountingCaptioner(create_captioner(f"blip2:{tiny_blip2_opt}", max_new_tokens=MAX_NEW))
    visdiff.caption(folder, captioner=captioner, use_cache=False)
    visdiff.caption(folder, captioner=captioner, use_cache=False)
    assert captioner.batches == [5, 5]


def test_undecodable_image_is_skipped_with_reason(tiny_blip2_opt, folder):
    data = (folder / "1.png").read_bytes()
    (folder / "broken.png").write_bytes(data[: len(data) // 2])  # valid header, truncated pixels
    captioner = create_captioner(f"blip2:{tiny_blip2_opt}", max_new_tokens=MAX_NEW)
    table = visdiff.caption(folder, captioner=captioner)
    assert len(table) == 5
    assert [s["source"] for s in table.attrs["skipped"]] == [str(folder / "broken.png")]


def test_openai_captioner_sends_the_image_and_returns_the_answer(fake_openai, images):
    fake_openai.replies += [Reply("  A red\nsquare. "), Reply("a green square")]
    # One request at a time, so the scripted answers meet the images in order.
    captioner = create_captioner("openai:vision-model", base_url=fake_openai.base_url, llm_pool=RequestPool(1))
    assert captioner.caption_images(images[:2]) == ["A red square.", "a green square"]
    content = fake_openai.requests[0].body["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Describe this image in detail."}
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert fake_openai.requests[0].body["temperature"] == 0


def image_digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def test_openai_captioner_overlaps_requests_and_keeps_image_order(fake_openai, images):
    # Each answer names its image; none is answered before all three arrived (a sequential
    # client would never get past the first), and the first to arrive is answered last.
    all_arrived = threading.Barrier(3, timeout=10)

    def respond(request):
        arrived = len(fake_openai.requests)
        all_arrived.wait()
        return Reply(image_digest(request.body["messages"][0]["content"][1]["image_url"]["url"]),
                     delay=0.3 if arrived == 1 else 0.0)

    fake_openai.respond = respond
    captioner = create_captioner("openai:vision-model", base_url=fake_openai.base_url, llm_pool=RequestPool(3))
    captions = captioner.caption_images(images)
    assert captions == [image_digest(image_content(image)["image_url"]["url"]) for image in images]
    assert fake_openai.max_in_flight == 3  # all three at once, not one after another


def test_openai_empty_caption_is_a_service_error(fake_openai, images):
    fake_openai.replies.append(Reply(""))
    captioner = create_captioner("openai:vision-model", base_url=fake_openai.base_url)
    with pytest.raises(ServiceError, match="empty caption"):
        captioner.caption_images(images[:1])


@pytest.mark.gpu
@pytest.mark.parametrize("backend, fixture", [("blip2", "tiny_blip2_opt"), ("blip2", "tiny_blip2_t5"), ("llava", "tiny_llava")])
def test_gpu_captioning_in_half_precision(backend, fixture, request, images):
    import torch

    captioner = create_captioner(f"{backend}:{request.getfixturevalue(fixture)}", max_new_tokens=MAX_NEW)
    assert captioner.device.type == "cuda" and captioner.dtype == torch.float16
    assert captioner.model.get_output_embeddings().weight.dtype == torch.float16
    assert json.loads(captioner.cache_id)["dtype"] == "float16"
    captions = captioner.caption_images(images)
    assert len(captions) == 3 and all(len(c.split()) == MAX_NEW for c in captions)
    bf16 = create_captioner(f"{backend}:{request.getfixturevalue(fixture)}", max_new_tokens=MAX_NEW, precision="bf16")
    assert len(bf16.caption_images(images)) == 3


def _recording_generate(captioner):
    """Wrap the model's ``generate`` to record its keyword arguments."""
    calls, generate = [], captioner.model.generate

    def record(**kwargs):
        calls.append({k: v for k, v in kwargs.items() if k in ("num_beams", "max_new_tokens", "do_sample", "temperature")})
        return generate(**kwargs)

    captioner.model.generate = record
    return calls


def test_paper_profile_decodes_blip2_with_5_beams_and_30_tokens(tiny_blip2_opt, images, tmp_path):
    from visdiff.options import RunOptions
    from visdiff.stages import RunStages

    options = RunOptions(profile="paper", captioner=f"blip2:{tiny_blip2_opt}", cache_dir=tmp_path)
    captioner = RunStages(options).captioning.captioner
    calls = _recording_generate(captioner)
    assert all(len(c.split()) <= 30 for c in captioner.caption_images(images))
    assert calls == [{"num_beams": 5, "max_new_tokens": 30, "do_sample": False}]
    assert json.loads(captioner.cache_id)["num_beams"] == 5
    # The offline and laptop profiles keep greedy decoding with 60 tokens.
    laptop = RunStages(options.replace(profile="laptop")).captioning.captioner
    assert (laptop.num_beams, laptop.max_new_tokens, laptop.temperature) == (1, 60, 0.0)


def test_paper_profile_samples_llava_at_temperature_0_2(tiny_llava, images, tmp_path):
    from visdiff.options import RunOptions
    from visdiff.stages import RunStages

    options = RunOptions(profile="paper", captioner=f"llava:{tiny_llava}", caption_max_tokens=MAX_NEW, cache_dir=tmp_path)
    captioner = RunStages(options).captioning.captioner
    calls = _recording_generate(captioner)
    assert len(captioner.caption_images(images)) == 3
    assert calls == [{"num_beams": 1, "max_new_tokens": MAX_NEW, "do_sample": True, "temperature": 0.2}]
    assert json.loads(captioner.cache_id)["temperature"] == 0.2
    # Beams asked for on the command line replace the profile's sampling.
    beams = RunStages(options.replace(caption_beams=2)).captioning.captioner
    assert (beams.num_beams, beams.temperature) == (2, 0.0)


def test_decoding_a_captioner_cannot_take_is_a_usage_error(tmp_path):
    from visdiff.errors import InputError
    from visdiff.options import RunOptions
    from visdiff.stages import RunStages

    stages = RunStages(RunOptions(captioner="offline", caption_beams=3, cache_dir=tmp_path), captions_only=True)
    with pytest.raises(InputError, match="captioner 'offline' does not take the option"):
        stages.captioning.captioner
