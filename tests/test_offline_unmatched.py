"""The offline scorer names the hypotheses it can say nothing about (issue #23, item 6): every
image of both sets at the score floor, because no image shows the concepts the hypothesis maps
to, or because it matched no concept at all."""

from __future__ import annotations

import logging

import pytest
import torch

from visdiff.concepts import N_CLASSES, STATISTICS, load_concept_table
from visdiff.errors import excerpt
from visdiff.scorers import create_scorer, offline

OFFLINE_LOGGER = "visdiff.scorers.offline"


@pytest.fixture
def offline_scorer():
    return create_scorer("offline")


def image_embeddings(wnid: str, n: int) -> torch.Tensor:
    """(n, 1006) embeddings of images the classifier is sure show class ``wnid``, statistics 0."""
    embeddings = torch.zeros((n, N_CLASSES + len(STATISTICS)))
    embeddings[:, load_concept_table().class_wnids.index(wnid)] = 1.0
    return embeddings


def unseen_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "say nothing" in r.getMessage()]


def test_a_concept_no_image_shows_is_named_once(offline_scorer, caplog):
    dogs, birds = image_embeddings("n02085620", 4), image_embeddings("n01530575", 3)  # Chihuahuas, bramblings
    long_name = "indoor scenes, " + "x" * 100  # any name: the column's scores decide
    hypotheses = ["indoor scenes", "dogs", long_name]
    text = offline_scorer.encode_texts(["indoor scenes", "dogs", "indoor scenes"])
    scores_a, scores_b = offline_scorer.score(dogs, text), offline_scorer.score(birds, text)
    with caplog.at_level(logging.WARNING, logger=OFFLINE_LOGGER):
        unseen = offline_scorer.warn_unseen(hypotheses, scores_a, scores_b)
        again = offline_scorer.warn_unseen(hypotheses, scores_a.numpy(), scores_b.numpy())
    assert unseen == again == ["indoor scenes", long_name]
    warnings = unseen_warnings(caplog)
    assert len(warnings) == 2  # once per hypothesis, however often it is scored
    assert "'indoor scenes' matched nothing the offline scorer sees" in warnings[0]
    assert "its scores are constant" in warnings[0]
    assert repr(excerpt(long_name)) in warnings[1] and long_name not in warnings[1]


def test_a_concept_one_set_shows_is_not_named(offline_scorer, caplog):
    dogs, birds = image_embeddings("n02085620", 2), image_embeddings("n01530575", 2)
    text = offline_scorer.encode_texts(["birds"])
    with caplog.at_level(logging.WARNING, logger=OFFLINE_LOGGER):
        unseen = offline_scorer.warn_unseen(["birds"], offline_scorer.score(dogs, text),
                                            offline_scorer.score(birds, text))
    assert unseen == [] and unseen_warnings(caplog) == []


def test_a_text_that_matches_no_concept_is_named_once(offline_scorer, monkeypatch, caplog):
    # Embedding all ~1800 concept names takes a while on a CPU; a few make the same point.
    table = load_concept_table()
    keep = [k for k, c in enumerate(table.concepts) if c.phrase in ("dogs", "birds", "cars")]
    monkeypatch.setattr(offline, "concept_names", lambda: [(table.concepts[k].name, "class", k) for k in keep])
    hypothesis = "quarterly tax filing deadlines"
    with caplog.at_level(logging.WARNING, logger=OFFLINE_LOGGER):
        rows = offline_scorer.encode_texts([hypothesis])
        offline_scorer.encode_texts([hypothesis])
        unseen = offline_scorer.warn_unseen([hypothesis], offline_scorer.score(image_embeddings("n02085620", 2), rows))
    assert rows.abs().sum() == 0 and unseen == [hypothesis]
    [warning] = unseen_warnings(caplog)
    assert f"{hypothesis!r} matched no concept the offline scorer knows" in warning
