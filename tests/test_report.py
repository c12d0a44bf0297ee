"""visdiff.report: results.json / results.csv contents, HTML escaping, and the page in a real browser."""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import make_image
from visdiff.errors import InputError
from visdiff.sources import load_image_set
from visdiff.ranking import RESULT_COLUMNS, format_p_value, rank_directions, rank_scores
from visdiff.report import SCHEMA_VERSION, write_outputs
from visdiff.evidence import ThumbnailCache, short_names, top_images
from visdiff.report.plots import score_histogram
from visdiff.result import CompareResult, MultiCompareResult

# Solid colours the page uses nowhere else, so the screenshot shows whether thumbnails drew.
GREEN, MAGENTA, YELLOW = (40, 180, 40), (180, 40, 180), (240, 220, 40)
SCRIPT_FILE = "<script>alert(1)</script>.png"  # '/' makes this a folder '<script>alert(1)<' + 'script>.png'
ONERROR_FILE = "<img src=x onerror=alert(1)>.png"
HYPOTHESES = ["green <b>things</b>", "<script>alert('hyp')</script> & more", "a constant score"]
CAPTION = "<i>a caption</i> & <script>x()</script>"


class PageParser(HTMLParser):
    """Elements, text, and the body-cell texts of each table row, by the table's class."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.table_rows: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if tag == "table":
            self._table = attrs.get("class") or ""
        elif tag == "tr" and self._table is not None:
            self.table_rows.setdefault(self._table, []).append([])
        elif tag == "td" and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag == "td" and self._cell is not None:
            self.table_rows[self._table][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def tags(self, name: str) -> list[dict]:
        return [attrs for tag, attrs in self.elements if tag == name]

    def rows(self, table_class: str) -> list[list[str]]:
        """Rows with body cells (header rows left out) of all tables of that class."""
        return [row for row in self.table_rows.get(table_class, []) if row]

    @property
    def all_text(self) -> str:
        return "".join(self.text)


@pytest.fixture
def compare_result(tmp_path) -> CompareResult:
    """A hand-built result: 6 images in A (two with hostile names), 4 in B, 3 hypotheses."""
    a, b = tmp_path / "set_a", tmp_path / "set_b"
    for i in range(4):
        make_image(a / f"green{i}.png", (GREEN[0], GREEN[1] + 3 * i, GREEN[2]))
        make_image(b / f"magenta{i}.png", (MAGENTA[0], MAGENTA[1] + 3 * i, MAGENTA[2]))
    make_image(a / SCRIPT_FILE, YELLOW)
    make_image(a / ONERROR_FILE, (GREEN[0], GREEN[1] + 20, GREEN[2]))
    # As a run's result holds them: embedded, so without the bytes read when hashing.
    set_a, set_b = load_image_set(a, name="A").release_bytes(), load_image_set(b, name="B").release_bytes()
    rng = np.random.default_rng(0)
    raw_a = np.column_stack([rng.normal(0.30, 0.01, len(set_a)), rng.normal(0.25, 0.02, len(set_a)), np.full(len(set_a), 0.5)])
    raw_b = np.column_stack([rng.normal(0.20, 0.01, len(set_b)), rng.normal(0.24, 0.02, len(set_b)), np.full(len(set_b), 0.5)])
    table = rank_scores(raw_a, raw_b, HYPOTHESES)
    order = [HYPOTHESES.index(h) for h in table["hypothesis"]]
    table.attrs.update(scorer="open_clip:ViT-B-32:laion2b_s34b_b79k")
    first_a = set_a.items[0].key
    return CompareResult(
        table=table, proposals=HYPOTHESES + ["GREEN things"], set_a=set_a, set_b=set_b,
        scores_a=raw_a[:, order], scores_b=raw_b[:, order],
        captions_a={first_a: CAPTION}, captions_b={},
        config={"captioner": "hf:Salesforce/blip2-opt-2.7b", "proposer": "llm:gpt-4o", "seed": 0,
                "out": tmp_path / "out", "rounds": np.int64(3), "weird": {"nested": [1.5, float("nan")]},
                "seconds": 0.008290563000173279},
        timings={"caption": 1.25, "rank": 0.5},
    )


def test_write_outputs_writes_three_files(compare_result, tmp_path):
    paths = write_outputs(compare_result, tmp_path / "new" / "out")
    assert set(paths) == {"html", "json", "csv"}
    assert [p.name for p in paths.values()] == ["report.html", "results.json", "results.csv"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())


def test_results_json_schema(compare_result, tmp_path):
    paths = write_outputs(compare_result, tmp_path / "out")

    def refuse(token):  # strict JSON: NaN/Infinity must have been written as null
        raise AssertionError(f"non-standard JSON constant {token}")

    doc = json.loads(paths["json"].read_text(encoding="utf-8"), parse_constant=refuse)
    assert doc["schema_version"] == SCHEMA_VERSION == 1
    assert [r["hypothesis"] for r in doc["results"]] == list(compare_result.table["hypothesis"])
    assert [r["rank"] for r in doc["results"]] == [1, 2, 3]
    assert set(doc["results"][0]) == {"rank", *RESULT_COLUMNS}
    assert doc["results"][0]["hypothesis"] == "green <b>things</b>"
    assert doc["results"][0]["auroc"] == pytest.approx(1.0)
    constant = next(r for r in doc["results"] if r["hypothesis"] == "a constant score")
    assert constant["constant"] is True and constant["p_greater"] == 1 and constant["significant"] is False
    assert doc["sets"]["a"]["n_images"] == 6 and doc["sets"]["b"]["n_images"] == 4
    assert [im["source"] for im in doc["sets"]["a"]["images"]] == [it.source for it in compare_result.set_a.items]
    assert any(im["source"].endswith(SCRIPT_FILE) for im in doc["sets"]["a"]["images"])
    assert np.allclose(doc["scores"]["a"], compare_result.scores_a)
    assert np.array(doc["scores"]["b"]).shape == (4, 3)
    assert doc["captions"]["a"] == {compare_result.set_a.items[0].key: CAPTION}
    assert doc["config"]["rounds"] == 3 and doc["config"]["weird"] == {"nested": [1.5, None]}
    assert doc["config"]["out"] == str(tmp_path / "out")
    assert doc["attrs"]["scorer"] == "open_clip:ViT-B-32:laion2b_s34b_b79k"
    assert doc["proposals"][-1] == "GREEN things"
    assert doc["timings"] == {"caption": 1.25, "rank": 0.5}


def test_results_csv_round_trips(compare_result, tmp_path):
    paths = write_outputs(compare_result, tmp_path / "out")
    table = pd.read_csv(paths["csv"])
    assert list(table.columns) == ["rank", *RESULT_COLUMNS, "set_a", "set_b"]
    assert list(table["hypothesis"]) == list(compare_result.table["hypothesis"])
    assert np.allclose(table["auroc"], compare_result.table["auroc"])
    assert table["constant"].sum() == 1 and set(table["set_a"]) == {"A"} and set(table["set_b"]) == {"B"}


def test_user_strings_are_escaped(compare_result, tmp_path):
    html = write_outputs(compare_result, tmp_path / "out")["html"].read_text(encoding="utf-8")
    page = PageParser(html)
    assert page.tags("script") == [] and page.tags("b") == [] and page.tags("i") == []
    # 6 + 4 thumbnails per hypothesis more true of A (the constant one is listed apart); a file
    # named like an <img> tag adds none.
    assert len(page.tags("img")) == 2 * 10
    assert all(img["src"].startswith("data:image/jpeg;base64,") for img in page.tags("img"))
    text = page.all_text
    for literal in (*HYPOTHESES, CAPTION, SCRIPT_FILE, ONERROR_FILE):
        assert literal in text
    assert "<script>alert('hyp')</script>" not in html and "&lt;script&gt;alert(" in html


def test_several_sets_page_escapes_set_names_and_keeps_anchors_apart(compare_result, tmp_path):
    hostile = "<script>alert('set')</script>"
    result = MultiCompareResult(results={hostile: compare_result, "plain": compare_result})
    html = write_outputs(result, tmp_path / "out")["html"].read_text(encoding="utf-8")
    page = PageParser(html)
    assert page.tags("script") == [] and hostile in page.all_text and "&lt;script&gt;alert(&#39;set&#39;)" in html
    ids = [attrs["id"] for _, attrs in page.elements if "id" in attrs]
    assert len(ids) == len(set(ids)) and {"s1-set", "s2-set", "s1-h1", "s2-h1", "s1-settings"} <= set(ids)
    assert len(page.rows("ranking")) == 2 * int((compare_result.table["favours"] == "A").sum())
    notebook = PageParser(result._repr_html_())
    assert notebook.tags("script") == [] and f"{hostile} vs the others" in notebook.all_text


def test_page_shows_table_settings_and_top_images(compare_result, tmp_path):
    page = PageParser(write_outputs(compare_result, tmp_path / "out", top_images=2)["html"].read_text(encoding="utf-8"))
    # The constant score favours neither set: listed apart, not under "more true of A".
    assert [row[1] for row in page.rows("ranking")] == list(compare_result.table["hypothesis"][:2])
    assert page.rows("ranking")[0][2] == "1.000"  # AUROC of the perfectly separating hypothesis
    first = compare_result.table.iloc[0]
    assert page.rows("ranking")[0][3] == f"{first['auroc_low']:.3f}–{first['auroc_high']:.3f}"
    # The one-sided p of the claim (as q), then Welch's t and p beside.
    second = compare_result.table.iloc[1]
    assert page.rows("ranking")[1][8] == format_p_value(second["p_greater"])
    assert page.rows("ranking")[1][11:13] == [f"{second['t']:.2f}", format_p_value(second["p_welch"])]
    text = " ".join(page.all_text.split())
    supported = int(compare_result.table["significant"].sum())
    assert f"{supported} of 2 candidates are supported by the evidence" in text
    assert "a constant score: AUROC 0.500 (" in text
    settings = dict(page.rows("settings"))
    assert settings["captioner"] == "hf:Salesforce/blip2-opt-2.7b" and settings["proposer"] == "llm:gpt-4o"
    assert settings["scorer"] == "open_clip:ViT-B-32:laion2b_s34b_b79k" and settings["alpha"] == "0.05"
    assert settings["weird.nested"] == "[1.5, null]" and settings["rounds"] == "3"
    assert settings["out"] == str(tmp_path / "out") and settings["time: caption"] == "1.25 s"
    assert settings["seconds"] == "0.008291"
    titles = [f["title"] for f in page.tags("figure")]
    assert len(titles) == 2 * (2 + 2)
    best_a = np.argsort(-compare_result.scores_a[:, 0])[:2]
    assert titles[:2] == [compare_result.set_a.items[i].source for i in best_a]
    assert len(page.tags("svg")) == 2


def test_both_directions_get_their_own_tables(compare_result, tmp_path):
    # compare(both_directions=True): rows more true of A, then rows more true of B (B over A).
    result = compare_result
    # B's phrases: the green score turned round (higher on B) and the constant one (neither).
    scores_a = np.hstack([result.scores_a, 1 - result.scores_a[:, :1], result.scores_a[:, 2:]])
    scores_b = np.hstack([result.scores_b, 1 - result.scores_b[:, :1], result.scores_b[:, 2:]])
    proposals = {"A": list(result.table["hypothesis"]), "B": ["magenta things", "B phrase"]}
    result.table, columns = rank_directions(scores_a, scores_b, proposals, alpha=0.05)
    result.scores_a, result.scores_b = scores_a[:, columns], scores_b[:, columns]
    paths = write_outputs(result, tmp_path / "out", top_images=1)

    assert [r["rank"] for r in json.loads(paths["json"].read_text())["results"]] == [1, 2, 3, 1, 2]
    assert list(pd.read_csv(paths["csv"])["direction"]) == ["A", "A", "A", "B", "B"]
    page = PageParser(paths["html"].read_text(encoding="utf-8"))
    assert len(page.tags("table")) == 3  # A table, B table, settings
    assert [row[:2] for row in page.rows("ranking")] == [["1", HYPOTHESES[0]], ["2", HYPOTHESES[1]], ["1", "magenta things"]]
    text = " ".join(page.all_text.split())
    assert "more true of B than of A" in text
    assert "Tested for B, but the scores favour the other set or neither (1) B phrase: AUROC 0.500" in text
    # A B-row's section shows B's images (the evidence) before A's.
    b_section = page.tags("figure")[-2:]
    assert [f["class"] for f in b_section] == ["b", "a"]


def test_secrets_never_reach_the_outputs(compare_result, tmp_path):
    compare_result.config.update(llm={"base_url": "http://localhost:8080/v1", "api_key": "sk-SECRET1", "max_tokens": 300},
                                 hf_token="hf_SECRET2")
    paths = write_outputs(compare_result, tmp_path / "out")
    for path in paths.values():
        assert "SECRET" not in path.read_text(encoding="utf-8")
    config = json.loads(paths["json"].read_text())["config"]
    assert config["llm"] == {"base_url": "http://localhost:8080/v1", "api_key": "<redacted>", "max_tokens": 300}
    assert config["hf_token"] == "<redacted>" and config["proposer"] == "llm:gpt-4o"


def test_top_images_best_first_and_names_relative(tmp_path):
    for name in ("x/cat.png", "y/cat.png", "y/dog.png"):
        make_image(tmp_path / "set" / name, (10, 20, 30))
    image_set = load_image_set(tmp_path / "set")
    names = short_names(image_set)
    assert names == ["x/cat.png", "y/cat.png", "y/dog.png"]
    shown = top_images(image_set, np.array([0.1, np.nan, 0.3]), {}, k=2, thumbnails=ThumbnailCache(), names=names).images
    assert [(s.name, s.score) for s in shown] == [("y/dog.png", 0.3), ("x/cat.png", 0.1)]
    thumb = Image.open(io.BytesIO(base64.b64decode(shown[0].data_uri.split(",", 1)[1])))
    assert thumb.format == "JPEG" and max(thumb.size) <= 160
    in_memory = load_image_set([Image.new("RGB", (300, 200), (1, 2, 3)), Image.new("RGB", (8, 8))])
    assert short_names(in_memory) == ["<image 0>", "<image 1>"]
    big = top_images(in_memory, np.array([0.5, 0.1]), {}, k=1, thumbnails=ThumbnailCache(), names=["x", "y"]).images[0]
    assert Image.open(io.BytesIO(base64.b64decode(big.data_uri.split(",", 1)[1]))).size == (160, 107)


def test_vanished_image_gets_placeholder(compare_result, tmp_path, caplog):
    missing = compare_result.set_b.items[0].path
    missing.unlink()
    with caplog.at_level(logging.WARNING, logger="visdiff"):
        paths = write_outputs(compare_result, tmp_path / "out")
    assert "image unavailable" in paths["html"].read_text(encoding="utf-8")
    assert str(missing) in caplog.text
    assert json.loads(paths["json"].read_text())["sets"]["b"]["n_images"] == 4


def test_bad_calls_raise_clear_errors(compare_result, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        write_outputs(compare_result, blocker)
    compare_result.scores_b = compare_result.scores_b[:, :2]
    with pytest.raises(ValueError, match=r"scores_b has shape \(4, 2\); expected \(4, 3\)"):
        write_outputs(compare_result, tmp_path / "out")


def test_histogram_geometry():
    plot = score_histogram([0.0, 0.0, 1.0, 1.0], [1.0, 1.0], bins=4, width=100, height=60)
    # Heights are shares of each set: half of A in each end bin, all of B in the top bin.
    assert [(r.x, r.height) for r in plot.bars_a] == [(0.0, 19.0), (75.0, 19.0)]
    assert [(r.x, r.height) for r in plot.bars_b] == [(75.0, 38.0)]
    assert plot.mean_a_x == pytest.approx(50.0) and plot.mean_b_x == pytest.approx(100.0)
    flat = score_histogram([0.2, 0.2], [0.2, np.nan], bins=4)
    assert flat.low < 0.2 < flat.high and len(flat.bars_a) == len(flat.bars_b) == 1


# --- the page in a real browser -------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0",
]


def run_chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed, so the report cannot be checked in a browser: "
                    "run `apt-get install -y chromium` (Debian; `make test` installs it)")
    return subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )


def console_messages(stderr: str) -> list[str]:
    # Chromium logs page console output (errors, CSP violations, failed loads) as "...:CONSOLE:..." lines.
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def colour_pixels(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 24) -> int:
    arr = np.asarray(image.convert("RGB"), dtype=np.int16)
    return int((np.abs(arr - np.array(colour)).max(axis=-1) <= tolerance).sum())


def test_report_in_headless_chromium(compare_result, tmp_path):
    page = write_outputs(compare_result, tmp_path / "out")["html"]

    dom = run_chromium(page, tmp_path / "profile-dom", "--dump-dom")
    assert console_messages(dom.stderr) == []
    parsed = PageParser(dom.stdout)
    assert [row[1] for row in parsed.rows("ranking")] == list(compare_result.table["hypothesis"][:2])
    assert parsed.tags("script") == []
    assert len(parsed.tags("img")) == 20
    assert SCRIPT_FILE in parsed.all_text and HYPOTHESES[1] in parsed.all_text

    screenshot = tmp_path / "report.png"
    shot = run_chromium(page, tmp_path / "profile-shot", "--window-size=1200,2600", f"--screenshot={screenshot}")
    assert console_messages(shot.stderr) == []
    assert screenshot.is_file() and screenshot.stat().st_size > 20_000
    image = Image.open(screenshot)
    assert image.size == (1200, 2600)
    # Thumbnails drew: each is 48x40 px at natural size, and A's images appear in 2 sections.
    assert colour_pixels(image, GREEN) > 4 * 1920
    assert colour_pixels(image, MAGENTA) > 4 * 1920
    assert colour_pixels(image, YELLOW) > 1920


def _round(direction: str) -> dict:
    key = "0" * 64
    return {
        "direction": direction, "round": 1, "proposer": "llm:fake",
        "images_a": [{"key": key, "source": "a/<b>1</b>.png"}], "images_b": [{"key": "1" * 64, "source": "b/2.png"}],
        "captions_a": {key: "a dog <script>x()</script>"}, "captions_b": {"1" * 64: "a cat"},
        "requests": [
            {"messages": [{"role": "system", "content": "Be careful."}, {"role": "user", "content": "Group A:\n- a dog"}],
             "params": {"temperature": 0.7}, "answer": "", "phrases": [], "dropped": []},
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "Group A again"},
                                                       {"type": "image_url", "note": "image omitted from the record"}]}],
             "params": {}, "answer": "Sure:\n* <i>dogs</i>\n* dogs", "phrases": ["dogs"],
             "dropped": [{"line": "Sure:", "reason": "not a list item"}, {"line": "<i>dogs</i>", "reason": "markup, not a hypothesis"}]},
        ],
    }


def test_proposal_rounds_are_in_results_json_and_collapsed_on_the_page(compare_result, tmp_path):
    compare_result.proposal_rounds = [_round("A"), _round("B")]
    paths = write_outputs(compare_result, tmp_path / "out")
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["proposal_rounds"] == compare_result.proposal_rounds  # image keys are not mistaken for secrets
    html = paths["html"].read_text(encoding="utf-8")
    page = PageParser(html)
    assert page.tags("script") == [] and page.tags("i") == [] and page.tags("b") == []
    rounds = [d for d in page.tags("details") if d.get("class") == "round"]
    assert len(rounds) == 2 and not any("open" in d for d in page.tags("details"))
    text = page.all_text
    for literal in ("Round 1, more true of A", "Round 1, more true of B", "a/<b>1</b>.png", "a dog <script>x()</script>",
                    "Be careful.", "Group A:\n- a dog", "[image_url: image omitted from the record]",
                    "Sure:\n* <i>dogs</i>\n* dogs", "markup, not a hypothesis", "reminder after an unusable answer"):
        assert literal in text


def test_a_run_without_rounds_has_no_provenance_section(compare_result, tmp_path):
    paths = write_outputs(compare_result, tmp_path / "out")
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["proposal_rounds"] == []
    assert 'id="provenance"' not in paths["html"].read_text(encoding="utf-8")
