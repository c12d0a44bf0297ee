"""open_clip scorer: a tiny random ViT saved to a file and loaded by the real loading path."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import visdiff
from visdiff.errors import BackendError, InputError, excerpt
from visdiff.scorers import Scorer, create_scorer

from .conftest import TINY_CLIP_ARCH


def weights_path(spec: str) -> str:
    return spec.split(":", 2)[2]


def test_weights_file_is_really_loaded(tiny_clip_weights):
    import open_clip

    scorer = create_scorer(tiny_clip_weights, device="cpu")
    assert isinstance(scorer, Scorer)
    reference = open_clip.create_model(TINY_CLIP_ARCH)
    reference.load_state_dict(torch.load(weights_path(tiny_clip_weights), weights_only=True))
    reference.eval()
    tokens = open_clip.get_tokenizer(TINY_CLIP_ARCH)(["a photo of a dog"])
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(reference.encode_text(tokens).float(), dim=-1)
    torch.testing.assert_close(scorer.encode_texts(["a photo of a dog"]), expected)


def test_embeddings_are_normalised_and_scores_are_cosines(tiny_clip_weights):
    scorer = create_scorer(tiny_clip_weights, device="cpu")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8))
    pixels = torch.stack([scorer.preprocess(image), scorer.preprocess(image.transpose(Image.FLIP_LEFT_RIGHT))])
    images = scorer.encode_images(pixels)
    texts = scorer.encode_texts(["red", "blue", "green"])
    assert images.shape == (2, 32) and texts.shape == (3, 32)
    torch.testing.assert_close(images.norm(dim=-1), torch.ones(2))
    scores = scorer.score(images, texts)
    assert scores.shape == (2, 3) and scores.abs().max() <= 1.0 + 1e-5


def test_preprocess_pickles_for_dataloader_workers(tiny_clip_weights):
    scorer = create_scorer(tiny_clip_weights, device="cpu")
    clone = pickle.loads(pickle.dumps(scorer.preprocess))
    image = Image.new("RGB", (40, 30), (10, 20, 30))
    torch.testing.assert_close(clone(image), scorer.preprocess(image))


def test_rank_through_the_weights_file(image_dirs, tiny_clip_weights):
    a, b = image_dirs
    table = visdiff.rank(["red things", "blue things"], a, b, scorer=tiny_clip_weights)
    assert table.attrs["scorer"] == tiny_clip_weights
    assert table.attrs["n_a"] == 6 and table.attrs["n_b"] == 6
    assert set(table["hypothesis"]) == {"red things", "blue things"}
    assert table["auroc"].between(0, 1).all()


def test_cache_id_follows_weights_content_not_path(tiny_clip_weights, tmp_path):
    path = weights_path(tiny_clip_weights)
    copy = tmp_path / "copy.pt"
    copy.write_bytes(open(path, "rb").read())
    torch.manual_seed(5)
    import open_clip

    other = tmp_path / "other.pt"
    torch.save(open_clip.create_model(TINY_CLIP_ARCH).state_dict(), other)
    ids = [create_scorer(f"open_clip:{TINY_CLIP_ARCH}:{p}").cache_id for p in (path, copy, other)]
    assert ids[0] == ids[1] != ids[2]


def test_weights_load_lazily(tiny_clip_weights, tmp_path):
    """A scorer is cheap to build: weights load on first use (a warm cache never needs them)."""
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint" * 100)
    scorer = create_scorer(f"open_clip:{TINY_CLIP_ARCH}:{garbage}")
    with pytest.raises(BackendError, match="cannot load open_clip model"):
        scorer.encode_texts(["x"])


def test_weights_of_another_architecture_are_a_backend_error(tmp_path):
    wrong = tmp_path / "wrong.pt"
    torch.save({"some.layer": torch.zeros(2)}, wrong)
    with pytest.raises(BackendError, match="Missing key"):
        create_scorer(f"open_clip:{TINY_CLIP_ARCH}:{wrong}").encode_texts(["x"])


@pytest.mark.usefixtures("tiny_clip_weights")  # registers the tiny architecture
@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("ViT-B-32x:openai", r"unknown open_clip architecture 'ViT-B-32x'; did you mean ViT-B-32.*choose one of: .*RN50"),
        ("NoSuchNet:openai", r"unknown open_clip architecture 'NoSuchNet'; choose one of: .*ViT-bigG-14"),
        ("ViT-B-32:nosuchtag", r"unknown pretrained tag 'nosuchtag' for open_clip ViT-B-32; tags for ViT-B-32: .*laion2b_s34b_b79k"),
        ("ViT-B-32", r"open_clip:ViT-B-32 names no weights; use open_clip:ViT-B-32:TAG"),
        (f"{TINY_CLIP_ARCH}:/no/such/weights.pt", "weights file '/no/such/weights.pt' does not exist"),
        (TINY_CLIP_ARCH, "has no published tags"),
    ],
)
def test_bad_model_names_fail_early_listing_choices(model, message):
    with pytest.raises(InputError, match=message):
        create_scorer(f"open_clip:{model}")


def test_device_and_precision(tiny_clip_weights):
    scorer = create_scorer(tiny_clip_weights, device="cpu", precision="fp32")
    assert scorer.device == torch.device("cpu")
    assert scorer.encode_texts(["x"]).dtype == torch.float32
    with pytest.raises(ValueError, match="precision 'fp8'"):
        create_scorer(tiny_clip_weights, precision="fp8")


@pytest.mark.gpu
def test_cuda_fp16_matches_cpu(tiny_clip_weights):
    cpu = create_scorer(tiny_clip_weights, device="cpu")
    gpu = create_scorer(tiny_clip_weights, device="cuda")
    assert gpu.dtype == torch.float16
    texts = ["a red square", "a blue circle"]
    torch.testing.assert_close(gpu.encode_texts(texts).cpu(), cpu.encode_texts(texts), atol=2e-2, rtol=0)


@pytest.mark.parametrize("run", ["first", "text embeddings cached"])
def test_texts_past_the_text_context_are_named_in_a_warning(run, tiny_clip_weights, image_dirs, tmp_path, caplog):
    """open_clip's tokenizer cuts a text longer than the context (16 tokens in the tiny model)
    without a word; the scorer names it, shortened, and says what is lost: also when the
    text's embedding comes from the cache of an earlier run."""
    long_text = "a photo of " + " ".join(f"dog{i}" for i in range(200))
    rank = lambda: visdiff.rank(["a dog", long_text], *image_dirs, scorer=tiny_clip_weights, device="cpu",
                                cache_dir=tmp_path / "cache", show_progress=False)
    if run == "text embeddings cached":
        rank()
        caplog.clear()
    with caplog.at_level("WARNING", logger="visdiff"):
        rank()
    [record] = [r for r in caplog.records if "text context" in r.getMessage()]
    message = record.getMessage()
    assert "fills the whole text context" in message and "(16 tokens)" in message and "not scored" in message
    assert f"{excerpt(long_text)!r}" in message and len(excerpt(long_text)) == 80 and "dog199" not in message
