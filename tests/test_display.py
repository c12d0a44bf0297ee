"""Jupyter display: the ranked table, image galleries and CompareResult as HTML (escaped like
the report) and as plain text."""

from __future__ import annotations

import numpy as np
import pytest

import visdiff
from tests.conftest import make_image
from tests.test_report import CAPTION, HYPOTHESES, ONERROR_FILE, SCRIPT_FILE, PageParser, compare_result  # noqa: F401
from visdiff.ranking import rank_scores
from visdiff.result import RankedTable


def test_ranked_table_html_marks_significance_and_escapes():
    rng = np.random.default_rng(0)
    scores_a = np.column_stack([rng.normal(1.0, 0.1, 20), rng.normal(0, 1, 20), np.full(20, 0.5)])
    scores_b = np.column_stack([rng.normal(0.0, 0.1, 20), rng.normal(0, 1, 20), np.full(20, 0.5)])
    table = RankedTable.of(rank_scores(scores_a, scores_b, HYPOTHESES))
    html = table._repr_html_()
    page = PageParser(html)
    assert page.tags("script") == [] and page.tags("b") == []
    assert "<script>alert('hyp')</script>" not in html and "&lt;script&gt;alert(" in html
    rows = page.rows("visdiff-ranking")
    favoured = table[table["favours"] == "A"]
    assert [row[1] for row in rows] == list(favoured["hypothesis"])
    assert [row[-1] for row in rows] == ["yes" if s else "no" for s in favoured["significant"]]
    assert rows[0][1] == "green <b>things</b>" and rows[0][-1] == "yes"
    # The constant score is listed apart, said to be seen by nothing.
    assert "a constant score: AUROC 0.500" in page.all_text and "the scorer saw nothing of this phrase" in page.all_text
    assert "q &lt; 0.05" in html
    # Elsewhere it is a DataFrame's plain text.
    assert "green <b>things</b>" in repr(table) and "<td" not in repr(table)


def test_compare_result_html_shows_table_and_top_images_escaped(compare_result):  # noqa: F811
    html = compare_result._repr_html_()
    page = PageParser(html)
    # Hypotheses and file names are text: no markup of theirs reaches the page. The only <b>
    # elements are the page's own: the sets and 2 hypothesis headings (the constant one is apart).
    assert page.tags("script") == [] and len(page.tags("b")) == 2 + 2
    assert "<script>" not in html and all(set(img) == {"src", "alt", "style"} for img in page.tags("img"))
    text = page.all_text
    for literal in (*HYPOTHESES, SCRIPT_FILE, ONERROR_FILE):
        assert literal in text
    assert [row[1] for row in page.rows("visdiff-ranking")] == list(compare_result.table["hypothesis"][:2])
    # 2 hypotheses more true of A x (6 of A + 4 of B) thumbnails, all embedded.
    images = page.tags("img")
    assert len(images) == 2 * (6 + 4) and all(img["src"].startswith("data:image/jpeg;base64,") for img in images)
    assert {img["alt"] for img in images} >= {SCRIPT_FILE, ONERROR_FILE}
    # Sets named only by their letter are not said twice ("A = A").
    assert str(compare_result).startswith("CompareResult: A (6 images), B (4 images), 3 hypotheses ranked")
    assert "array(" not in repr(compare_result)


def test_gallery_html_escapes_file_names(tmp_path, tiny_clip_weights):
    a, b = tmp_path / "a", tmp_path / "b"
    for i in range(3):
        make_image(a / f"red{i}.png", (200, 40 + 10 * i, 40))
        make_image(b / f"blue{i}.png", (40, 40, 200 - 10 * i))
    make_image(a / SCRIPT_FILE, (220, 40, 40))
    comparison = visdiff.Comparison(a, b, scorer=tiny_clip_weights, device="cpu")
    gallery = comparison.images("<script>alert('hyp')</script> red", side="a", k=10)
    html = gallery._repr_html_()
    page = PageParser(html)
    assert page.tags("script") == []
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert len(page.tags("img")) == 4 and SCRIPT_FILE in page.all_text
    assert "Highest-scoring images of A" in page.all_text
    assert SCRIPT_FILE in str(gallery) and "<td" not in str(gallery)


@pytest.mark.parametrize("side", ["a", "b"])
def test_lowest_gallery_says_so(tmp_path, tiny_clip_weights, side):
    a, b = tmp_path / "a", tmp_path / "b"
    for i in range(3):
        make_image(a / f"red{i}.png", (200, 40 + 10 * i, 40))
        make_image(b / f"blue{i}.png", (40, 40, 200 - 10 * i))
    gallery = visdiff.Comparison(a, b, scorer=tiny_clip_weights, device="cpu").images("red", side=side, k=2, lowest=True)
    assert f"Lowest-scoring images of {side.upper()}" in PageParser(gallery._repr_html_()).all_text
    assert len(gallery.images) == 2 and gallery.images[0].score <= gallery.images[1].score


def test_compare_result_html_both_directions(compare_result):  # noqa: F811
    table = compare_result.table.assign(direction=["A", "B", "B"], favours=["A", "B", "neither"])
    both = visdiff.CompareResult(**{**compare_result.__dict__, "table": table})
    page = PageParser(both._repr_html_())
    assert [row[:2] for row in page.rows("visdiff-ranking")] == [["1", "A"], ["1", "B"]]
    # Ranks count within each direction, and each phrase says which set it describes.
    for hypothesis, direction in zip(table["hypothesis"][:2], table["direction"]):
        assert f"1. {hypothesis} (more true of {direction})" in page.all_text
    # A B row whose scores favour neither set is listed apart, never as more true of B.
    assert "(for B) a constant score: AUROC 0.500" in page.all_text
    assert "a constant score (more true of" not in page.all_text
