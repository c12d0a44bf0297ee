"""Offline profile: concept table and lifting, image statistics, text mapping, the
vocabulary proposer, and the real packaged weights on the example images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from visdiff.concepts import (
    N_CLASSES,
    PHOTO_PROPERTIES,
    STATISTICS,
    exact_weights,
    image_statistics,
    load_concept_table,
    normalise_text,
    property_scores,
)
from visdiff.errors import BackendError, InputError
from visdiff.sources import load_image_set
from visdiff.cache_root import CacheRoot
from visdiff.embeddings.scoring import Scoring
from visdiff.embeddings.settings import EmbedSettings
from visdiff.proposers import ProposalContext, create_proposer
from visdiff.proposers.vocabulary import (
    Vocabulary, default_vocabulary, read_vocabulary_file, select_phrases, vocabulary_from_phrases,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# examples/a is music clipart, examples/b tools clipart (see examples/README.md).
EXAMPLE_DIFFERENCE = "musical instruments"
EXAMPLE_CAPTION_WORD = "musical instrument"


def concept_index(phrase: str) -> int:
    return next(k for k, c in enumerate(load_concept_table().concepts) if c.phrase == phrase)


def class_index(wnid: str) -> int:
    return load_concept_table().class_wnids.index(wnid)


# -- concept table and lifting ---------------------------------------------------------

def test_concept_table_lifts_classes_to_their_wordnet_ancestors():
    table = load_concept_table()
    dogs, birds = concept_index("dogs"), concept_index("birds")
    chihuahua = class_index("n02085620")
    assert len(table.class_wnids) == N_CLASSES
    assert len(table.concepts[dogs].classes) == 118  # the ImageNet dog breeds
    assert chihuahua in table.concepts[dogs].classes
    assert chihuahua not in table.concepts[birds].classes
    assert concept_index("canines") in table.ancestors[dogs]
    # A one-hot Chihuahua prediction: 1 for every ancestor of its synset, 0 elsewhere.
    probabilities = np.zeros(N_CLASSES, np.float32)
    probabilities[chihuahua] = 1.0
    lifted = probabilities @ table.membership
    own = table.class_concept[chihuahua]
    assert set(np.flatnonzero(lifted).tolist()) == {own, *table.ancestors[own]}


def test_exact_weights_cover_names_plurals_unions_and_properties():
    table = load_concept_table()
    dogs = exact_weights("dogs")
    assert dogs is not None and dogs.sum() == 118
    assert np.array_equal(exact_weights("a photo of a dog"), dogs)
    cars, trucks = (table.concepts[concept_index(p)].classes for p in ("cars", "trucks"))
    union = exact_weights("cars and trucks")
    assert set(np.flatnonzero(union).tolist()) == set(cars) | set(trucks)
    grey = exact_weights("Black and white photos.")
    assert grey[N_CLASSES + [p.name for p in PHOTO_PROPERTIES].index("black and white photo")] == 1
    assert grey[:N_CLASSES].sum() == 0
    assert exact_weights("dogs wearing hats at the beach") is None
    assert normalise_text("  Photos of  the Dogs. ") == "dogs"


# -- image statistics ------------------------------------------------------------------

def test_image_statistics_measure_colour_exposure_and_focus():
    # Coloured shapes with hard edges and sensor noise, like objects in a photo.
    canvas = Image.new("RGB", (224, 224), (200, 180, 90))
    draw = ImageDraw.Draw(canvas)
    rng = np.random.default_rng(0)
    for _ in range(12):
        x, y = rng.integers(0, 200, 2)
        draw.rectangle([int(x), int(y), int(x) + 40, int(y) + 30], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    colour = (np.asarray(canvas) + rng.normal(0, 4, (224, 224, 3))).clip(0, 255).astype(np.uint8)
    grey = np.repeat(colour.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    dark = (colour * 0.15).astype(np.uint8)
    blurred = np.asarray(Image.fromarray(colour).filter(ImageFilter.GaussianBlur(6)))
    pixels = torch.from_numpy(np.stack([colour, grey, dark, blurred])).permute(0, 3, 1, 2).float() / 255
    stats = image_statistics(pixels)
    scores = property_scores(torch.cat([stats, torch.zeros(len(stats), 1)], dim=1))  # upright
    names = [p.name for p in PHOTO_PROPERTIES]
    grey_col, dark_col, blur_col = (names.index(n) for n in ("black and white photo", "dark photo", "blurry photo"))
    assert scores[1, grey_col] == 1 and scores[0, grey_col] == 0
    assert scores[2, dark_col] == 1 and scores[0, dark_col] == 0
    assert scores[3, blur_col] == 1 and scores[0, blur_col] == 0
    # Sharpness is contrast-free: darkening does not make an image look blurred.
    assert float(stats[2, 2]) == pytest.approx(float(stats[0, 2]), rel=0.1)


def test_flat_fills_score_as_drawings_and_texture_as_photographs():
    canvas = Image.new("RGB", (224, 224), (255, 255, 255))
    ImageDraw.Draw(canvas).ellipse([40, 50, 180, 170], fill=(220, 60, 40), outline=(0, 0, 0), width=3)
    texture = np.random.default_rng(1).normal(128, 30, (224, 224, 3)).clip(0, 255).astype(np.uint8)
    pixels = torch.from_numpy(np.stack([np.asarray(canvas), texture])).permute(0, 3, 1, 2).float() / 255
    scores = property_scores(torch.cat([image_statistics(pixels), torch.zeros(2, 1)], dim=1))
    names = [p.name for p in PHOTO_PROPERTIES]
    assert scores[:, names.index("drawing")].tolist() == [1.0, 0.0]
    assert scores[:, names.index("photograph")].tolist() == [0.0, 1.0]
    assert scores[:, names.index("white background")].tolist() == [1.0, 0.0]
    assert scores[:, names.index("line drawing")].tolist() == [0.0, 0.0]  # coloured fill


def test_line_art_and_cut_out_photos():
    # Black outlines on white: a line drawing. A textured photo cut out onto white: a
    # photograph on a white background, not a drawing (flatness counts the filled part only).
    line_art = Image.new("RGB", (224, 224), (255, 255, 255))
    ImageDraw.Draw(line_art).ellipse([40, 50, 180, 170], outline=(0, 0, 0), width=3)
    cut_out = np.full((224, 224, 3), 255, np.uint8)
    cut_out[40:190, 60:160] = np.random.default_rng(2).normal(120, 25, (150, 100, 3)).clip(0, 255)
    pixels = torch.from_numpy(np.stack([np.asarray(line_art), cut_out])).permute(0, 3, 1, 2).float() / 255
    scores = property_scores(torch.cat([image_statistics(pixels), torch.zeros(2, 1)], dim=1))
    names = [p.name for p in PHOTO_PROPERTIES]
    assert scores[:, names.index("line drawing")].tolist() == [1.0, 0.0]
    assert scores[:, names.index("black and white photo")].tolist() == [0.0, 0.0]
    assert scores[:, names.index("drawing")].tolist()[1] == 0.0
    assert scores[:, names.index("white background")].tolist() == [1.0, 1.0]


def test_scene_concepts_are_unions_of_wordnet_concepts():
    table = load_concept_table()
    water = exact_weights("water")
    shores, vessels = (table.concepts[concept_index(p)].classes for p in ("shores", "vessels (craft)"))
    assert water is not None and set(shores) | set(vessels) <= set(np.flatnonzero(water).tolist())
    assert np.array_equal(exact_weights("indoors"), exact_weights("indoor scenes"))


# -- vocabulary proposer ----------------------------------------------------------------

def test_select_phrases_prefers_the_most_specific_phrase_that_covers_a():
    phrases = ["placental mammals", "dogs", "Rottweilers", "birds", "black and white photos"]
    vocabulary = vocabulary_from_phrases(phrases)
    # 10 dog photos (1 Rottweiler) against 10 bird photos, as concept probabilities.
    a = np.array([[0.97, 0.95, 0.9 if i == 0 else 0.02, 0.02, 0.02] for i in range(10)])
    b = np.array([[0.03, 0.02, 0.02, 0.96, 0.02] for _ in range(10)])
    picks = [phrases[i] for i in select_phrases(a, b, vocabulary)]
    assert picks[0] == "dogs"
    # Its WordNet relatives are never proposed beside it.
    assert "placental mammals" not in picks and "Rottweilers" not in picks
    assert "birds" not in picks  # more true of B


def test_select_phrases_prefers_broader_phrase_when_specific_one_covers_little():
    # A is dogs and cats: "carnivores" covers it, "dogs" only half.
    vocabulary = Vocabulary(("carnivores", "dogs", "cats"), (250, 118, 5), (0, 0, 0),
                            (frozenset({1, 2}), frozenset({0}), frozenset({0})), (0, 42, 18))
    a = np.array([[0.95, 0.93 if i % 2 else 0.02, 0.02 if i % 2 else 0.9] for i in range(10)])
    b = np.full((10, 3), 0.02)
    assert select_phrases(a, b, vocabulary)[0] == 0


def test_level_step_names_the_familiar_concept_that_separates_about_as_well():
    phrases = ["artifacts", "buildings", "houses", "trees"]
    vocabulary = vocabulary_from_phrases(phrases)
    assert vocabulary.familiarity[:3] == (1, 50, 157)  # WordNet's tagged-corpus counts
    # City photos (A) against nature (B): every photo of A is full of artifacts (cars,
    # signs, fences), mostly buildings; a few show a house. All three separate perfectly.
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.uniform(0.85, 0.95, 20), rng.uniform(0.5, 0.6, 20),
                         np.r_[np.full(3, 0.3), np.full(17, 0.06)], np.full(20, 0.02)])
    b = np.column_stack([rng.uniform(0.05, 0.15, 20), rng.uniform(0.01, 0.04, 20),
                         np.full(20, 0.01), rng.uniform(0.6, 0.9, 20)])

    def first(level_ratio):
        return phrases[select_phrases(a, b, vocabulary, level_ratio=level_ratio)[0]]

    # "buildings" covers less of A's artifact mass than the diff-ratio tier asks, so the
    # most specific member of the tier is the hypernym; the level step names the building.
    assert first(None) == "artifacts"
    assert first(0.5) == "buildings"
    # "houses" is the most familiar word but covers 3 of 20 images: the ratio keeps it out,
    # unless it is set so low that coverage no longer counts.
    assert first(0.05) == "houses" and first(0.25) == "buildings"


def test_level_step_never_climbs_to_a_more_familiar_hypernym():
    phrases = ["musical instruments", "devices"]
    vocabulary = vocabulary_from_phrases(phrases)
    assert vocabulary.familiarity == (1, 36)
    a = np.column_stack([np.linspace(0.8, 0.9, 10), np.linspace(0.85, 0.95, 10)])
    b = np.full((10, 2), 0.05)
    assert phrases[select_phrases(a, b, vocabulary, level_ratio=0.25)[0]] == "musical instruments"


def test_scene_concepts_are_related_to_their_members_and_the_members_relatives():
    vocabulary = default_vocabulary()
    index = {phrase: i for i, phrase in enumerate(vocabulary.phrases)}
    people, water = vocabulary.related[index["people"]], vocabulary.related[index["water scenes"]]
    # A member, a member's ancestor, a member's descendant.
    assert {index["garments"], index["clothing"], index["sweatshirts"]} <= people
    assert index["shores"] in water and index["water scenes"] in vocabulary.related[index["shores"]]
    # Scene concepts sharing members stay apart, and unrelated concepts are not drawn in.
    assert index["natural landscapes"] not in water and index["dogs"] not in people


def test_select_phrases_does_not_propose_a_scene_concept_beside_its_members_hypernym():
    vocabulary = default_vocabulary()
    index = {phrase: i for i, phrase in enumerate(vocabulary.phrases)}
    people, clothing = index["people"], index["clothing"]
    # People in A (their clothes seen by the classifier) against objects in B: "clothing"
    # separates a little better, "people" about as well and is what a person would say.
    a = np.full((10, len(vocabulary.phrases)), 0.02)
    b = np.full((10, len(vocabulary.phrases)), 0.02)
    a[:, people] = np.linspace(0.3, 0.6, 10)
    a[:, clothing] = np.linspace(0.32, 0.62, 10)
    b[:2, people] = 0.35
    b[:1, clothing] = 0.35
    picks = select_phrases(a, b, vocabulary)
    assert picks[0] == people and clothing not in picks


def test_vocabulary_file_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        create_proposer(f"vocabulary:{tmp_path / 'missing.txt'}")
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(InputError, match="no phrases"):
        create_proposer(f"vocabulary:{empty}")


def test_a_vocabulary_file_saved_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "words.txt"
    path.write_bytes("\ufeffdogs\r\ncats\r\n".encode("utf-8"))
    assert read_vocabulary_file(path) == ["dogs", "cats"]


def test_vocabulary_proposer_runs_on_a_clip_scorer(tiny_clip_weights, image_dirs, tmp_path):
    from visdiff.scorers import create_scorer

    words = tmp_path / "words.txt"
    words.write_text("red things\nblue things\ndogs\nsomething else\n")
    proposer = create_proposer(f"vocabulary:{words}", max_proposals=3)
    scoring = Scoring(create_scorer(tiny_clip_weights), cache=CacheRoot.disabled())
    set_a, set_b = load_image_set(image_dirs[0]), load_image_set(image_dirs[1])
    proposals = proposer.propose(ProposalContext(set_a, set_b, captioning=None, scoring=scoring))
    assert 1 <= len(proposals) <= 3
    assert set(proposals) <= {"red things", "blue things", "dogs", "something else"}


# -- real packaged weights ------------------------------------------------------------------

def test_offline_scorer_rejects_a_model_name():
    from visdiff.scorers import create_scorer

    with pytest.raises(BackendError, match="one built-in model"):
        create_scorer("offline:resnet50")


@pytest.fixture(scope="module")
def offline_scorer():
    from visdiff.scorers import create_scorer

    return create_scorer("offline")


def test_packaged_classifier_recognises_the_example_images(offline_scorer):
    images = [Image.open(p).convert("RGB") for p in sorted((EXAMPLES / "a").iterdir())]
    pixels = torch.stack([offline_scorer.preprocess(im) for im in images])
    embeddings = offline_scorer.encode_images(pixels)
    assert embeddings.shape == (len(images), N_CLASSES + len(STATISTICS))
    assert torch.allclose(embeddings[:, :N_CLASSES].sum(dim=1), torch.ones(len(images)), atol=1e-4)


def test_pipeline_finds_the_example_difference(offline_scorer):
    import visdiff

    result = visdiff.compare(EXAMPLES / "a", EXAMPLES / "b", scorer=offline_scorer, show_progress=False)
    top = result.table.iloc[0]
    assert top["hypothesis"] == EXAMPLE_DIFFERENCE
    assert top["auroc"] >= 0.8


def test_concept_table_edits_keep_the_cached_image_embeddings(tmp_path, monkeypatch):
    """Image rows depend on the classifier only; text rows also on the concept tables, so an
    edit of the tables re-embeds texts, never images (it re-embedded every image before)."""
    from visdiff.scorers import create_scorer, offline

    images = load_image_set(EXAMPLES / "a")
    texts = ["dogs", "musical instruments"]

    def run():
        scoring = Scoring(create_scorer("offline", cache=CacheRoot(tmp_path)), cache=CacheRoot(tmp_path),
                          settings=EmbedSettings(show_progress=False))
        return scoring.score(images, texts), scoring

    before, first = run()
    assert first.stats.encoded == len(images)
    monkeypatch.setattr(offline, "concepts_digest", lambda: "edited-table")
    seen = []
    real_encode_texts = offline.OfflineScorer.encode_texts
    monkeypatch.setattr(offline.OfflineScorer, "encode_texts",
                        lambda self, t: seen.extend(t) or real_encode_texts(self, t))
    after, second = run()
    assert (second.stats.encoded, second.stats.cached) == (0, len(images))
    assert seen == texts  # the edited tables' text rows are not the old ones
    np.testing.assert_array_equal(after, before)


def test_offline_captioner_names_the_subject():
    from visdiff.captioners import create_captioner

    captioner = create_captioner("offline")
    images = [Image.open(p).convert("RGB") for p in sorted((EXAMPLES / "a").iterdir())][:4]
    captions = captioner.caption_images(images)
    assert len(captions) == 4
    assert all(c.startswith(("a ", "an ")) and " of " in c for c in captions)
    assert any(EXAMPLE_CAPTION_WORD in c for c in captions)


def test_minilm_maps_free_text_to_the_nearest_concept(offline_scorer, monkeypatch):
    from visdiff.scorers import offline

    # Embedding all ~1800 concept names takes a while on a CPU; a few make the same point.
    table = load_concept_table()
    keep = [concept_index(p) for p in ("dogs", "birds", "cars", "musical instruments")]
    monkeypatch.setattr(offline, "concept_names", lambda: [(table.concepts[k].name, "class", k) for k in keep])
    weights = offline_scorer.encode_texts(["a puppy playing", "photos of a sparrow in a tree"]).numpy()
    dogs, birds = exact_weights("dogs"), exact_weights("birds")
    assert weights[0] @ dogs / dogs.sum() > 0.9
    assert weights[1] @ birds / birds.sum() > 0.9
