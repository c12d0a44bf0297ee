"""What a report says it compared and how: set names (folders, table selections, given names),
the command line and library versions, grouped settings, the words explaining each column,
rows listed apart (constant, or favouring the other set), and ties at a gallery's cut."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import visdiff
from tests.cli_helpers import run_cli
from tests.conftest import make_image
from tests.test_report import PageParser
from visdiff.cli.options import SetInputs
from visdiff.errors import InputError
from visdiff.sources import load_image_set
from visdiff.ranking import rank_scores
from visdiff.report import write_outputs
from visdiff.evidence import ThumbnailCache, top_images
from visdiff.html_templates import CONSTANT_NOTE
from visdiff.report.results import masked_command_line, provenance
from visdiff.result import CompareResult, ImageGallery
from visdiff.stats import AUROC_INTERVAL_METHOD

HYPOTHESES = ["red things", "blue things", "a constant score"]


@pytest.fixture
def named_dirs(tmp_path) -> tuple[Path, Path]:
    """data/dogs (reddish) and data/birds (bluish), 4 images each."""
    dogs, birds = tmp_path / "data" / "dogs", tmp_path / "data" / "birds"
    for i in range(4):
        make_image(dogs / f"dog{i}.png", (200, 40 + 10 * i, 40))
        make_image(birds / f"bird{i}.png", (40, 40, 200 - 10 * i))
    return dogs, birds


@pytest.fixture
def named_result(named_dirs) -> CompareResult:
    """A run on data/dogs vs data/birds, sets named by their folders: "red things" more true of
    dogs, "blue things" favouring birds, one constant score."""
    set_a, set_b = (load_image_set(folder).release_bytes() for folder in named_dirs)
    scores_a = np.column_stack([np.linspace(0.8, 0.9, 4), np.linspace(0.1, 0.2, 4), np.full(4, 0.02)])
    scores_b = np.column_stack([np.linspace(0.1, 0.2, 4), np.linspace(0.8, 0.9, 4), np.full(4, 0.02)])
    table = rank_scores(scores_a, scores_b, HYPOTHESES)
    order = [HYPOTHESES.index(h) for h in table["hypothesis"]]
    return CompareResult(table=table, proposals=HYPOTHESES, set_a=set_a, set_b=set_b,
                         scores_a=scores_a[:, order], scores_b=scores_b[:, order],
                         config={"profile": "offline", "scorer": "offline", "captioner_cache_id": None,
                                 "options": {"seed": 0, "llm": None, "alpha": 0.05, "holdout": 0.0},
                                 "embeddings": {"encoded": 8, "cached": 0}},
                         timings={"embed": 0.5})


def page_text(path: Path) -> str:
    return " ".join(PageParser(path.read_text(encoding="utf-8")).all_text.split())


# --- what was compared --------------------------------------------------------------------

def test_report_and_results_name_the_sets_by_their_folders(named_result, tmp_path):
    paths = write_outputs(named_result, tmp_path / "out")
    text = page_text(paths["html"])
    assert "visdiff: dogs vs birds" in text
    assert "A = dogs (4 images), B = birds (4 images)" in text and "A = A" not in text
    assert "more true of A (dogs) than of B (birds)" in text and "Highest-scoring in A (dogs)" in text
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert (doc["sets"]["a"]["name"], doc["sets"]["b"]["name"]) == ("dogs", "birds")
    csv = pd.read_csv(paths["csv"])
    assert set(csv["set_a"]) == {"dogs"} and set(csv["set_b"]) == {"birds"}
    assert str(named_result).startswith("CompareResult: A = dogs (4 images), B = birds (4 images)")


def set_inputs(set_a, set_b=None, **given) -> SetInputs:
    return SetInputs(set_a=Path(set_a), set_b=None if set_b is None else Path(set_b), group_a=given.pop("group_a", None),
                     group_b=given.pop("group_b", None), group_col=given.pop("group_col", "group_name"),
                     where=given.pop("where", None), **given)


def test_cli_names_sets_by_folder_table_selection_or_given_name(named_dirs, tmp_path):
    dogs, birds = named_dirs
    assert set_inputs(dogs, birds).names() == ["dogs", "birds"]
    assert set_inputs(dogs, birds, name_a="Dogs 2024", name_b="Birds").title == "A = Dogs 2024  vs  B = Birds"
    table = tmp_path / "t.csv"
    table.write_text("path,source,label\n")
    assert set_inputs(table, group_a="v2", group_b="v1", group_col="source", where=["label=bird"]).names() == \
        ["t.csv: source=v2 (label=bird)", "t.csv: source=v1 (label=bird)"]
    # Two folders of one name are told apart by their paths as given.
    other = tmp_path / "other" / "dogs"
    other.mkdir(parents=True)
    assert set_inputs(dogs, other).names() == [str(dogs), str(other)]
    with pytest.raises(InputError, match="both called 'x'"):
        set_inputs(dogs, birds, name_a="x", name_b="x").names()


def test_compare_command_names_sets_in_title_report_and_results(named_dirs, tmp_path):
    dogs, birds = named_dirs
    out = tmp_path / "out"
    result = run_cli("compare", str(dogs), str(birds), "--name-b", "garden birds", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "A = dogs  vs  B = garden birds" in result.stdout
    assert "more true of A (dogs) than of B (garden birds)" in page_text(out / "report.html")
    sets = json.loads((out / "results.json").read_text(encoding="utf-8"))["sets"]
    assert (sets["a"]["name"], sets["b"]["name"]) == ("dogs", "garden birds")


def test_table_groups_name_the_sets(tmp_path):
    for i in range(3):
        make_image(tmp_path / f"r{i}.png", (200, 40 + 10 * i, 40))
        make_image(tmp_path / f"b{i}.png", (40, 40, 200 - 10 * i))
    rows = [(f"r{i}.png", "v2", "bird") for i in range(3)] + [(f"b{i}.png", "v1", "bird") for i in range(3)]
    pd.DataFrame(rows, columns=["path", "source", "label"]).to_csv(tmp_path / "t.csv", index=False)
    result = run_cli("rank", str(tmp_path / "t.csv"), "--group-col", "source", "--group-a", "v2",
                                 "--group-b", "v1", "--where", "label=bird", "-H", "red things", "--scorer", "offline")
    assert result.exit_code == 0, result.output
    title = " ".join(result.stdout.split())
    assert "A = t.csv: source=v2 (label=bird) vs B = t.csv: source=v1 (label=bird)" in title


def test_python_api_names_sets_by_folder_or_given_name(named_dirs):
    result = visdiff.compare(*named_dirs, name_b="garden birds", show_progress=False)
    assert (result.set_a.name, result.set_b.name) == ("dogs", "garden birds")


# --- how it was run -----------------------------------------------------------------------

def test_results_record_the_command_line_with_secrets_masked(named_result, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/visdiff", "compare", "a dir", "b", "--base-url",
                                      "http://user:SECRET1@host/v1", "--api-key", "SECRET2", "--hf-token=SECRET3",
                                      "--max-tokens", "300"])
    doc = json.loads(write_outputs(named_result, tmp_path / "out")["json"].read_text(encoding="utf-8"))
    assert doc["command_line"] == ("visdiff compare 'a dir' b --base-url 'http://<redacted>@host/v1' "
                                   "--api-key '<redacted>' '--hf-token=<redacted>' --max-tokens 300")
    assert "SECRET" not in json.dumps(doc)
    assert masked_command_line([]) == ""


def test_results_record_library_versions(named_result, tmp_path):
    doc = json.loads(write_outputs(named_result, tmp_path / "out")["json"].read_text(encoding="utf-8"))
    assert {"python", "torch", "open_clip_torch", "transformers", "numpy"} <= set(doc["versions"])
    assert doc["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))


def test_library_versions_include_scipy():
    assert "scipy" in provenance()["versions"]


def test_settings_are_grouped_without_unset_values(named_result, tmp_path):
    paths = write_outputs(named_result, tmp_path / "out")
    settings = json.loads(paths["json"].read_text(encoding="utf-8"))["settings"]
    assert list(settings) == ["stages", "proposing", "statistics", "runtime"]
    assert settings["stages"] == {"profile": "offline", "scorer": "offline"}  # captioner_cache_id, options.llm: None
    assert settings["proposing"] == {"options.seed": 0}
    assert settings["statistics"] == {"options.alpha": 0.05, "options.holdout": 0.0, "alpha": 0.05}
    assert settings["runtime"] == {"embeddings.encoded": 8, "embeddings.cached": 0}
    page = PageParser(paths["html"].read_text(encoding="utf-8"))
    assert [attrs["id"] for attrs in page.tags("tbody") if attrs.get("id", "").startswith("settings-")] == \
        ["settings-stages", "settings-proposing", "settings-statistics", "settings-runtime"]
    rows = dict(page.rows("settings"))
    assert rows["time: embed"] == "0.50 s" and "options.llm" not in rows and "captioner_cache_id" not in rows


# --- what the figures mean ----------------------------------------------------------------

def test_page_explains_each_column_as_computed(named_result, tmp_path):
    text = page_text(write_outputs(named_result, tmp_path / "out")["html"])
    assert f"95% interval: of the AUROC ({AUROC_INTERVAL_METHOD})" in text
    assert "p: one-sided Mann-Whitney U test that A scores higher than B, consistent with the AUROC" in text
    assert "q: Benjamini-Hochberg over these p; significant when q < 0.05" in text
    assert "Welch's t-test, one-sided (A > B): the paper's statistic, shown beside, not used for the flag" in text
    assert "two-sided" not in text
    row = named_result.table.iloc[0]
    assert f"AUROC {row['auroc']:.3f} (95% interval {row['auroc_low']:.3f}–{row['auroc_high']:.3f})" in text


def test_rows_not_favouring_their_set_are_listed_apart(named_result, tmp_path):
    html = write_outputs(named_result, tmp_path / "out")["html"].read_text(encoding="utf-8")
    page = PageParser(html)
    assert [row[1] for row in page.rows("ranking")] == ["red things"]
    text = " ".join(page.all_text.split())
    assert "Tested for A (dogs), but the scores favour the other set or neither (2)" in text
    assert "blue things: AUROC 0.000" in text and "the scores favour B" in text
    assert "a constant score: AUROC 0.500 (" in text and CONSTANT_NOTE in text
    assert "blue things</h2>" not in html and len(page.tags("svg")) == 1  # no section "more true of A"
    notebook = " ".join(PageParser(named_result._repr_html_()).all_text.split())
    assert CONSTANT_NOTE in notebook and "blue things (more true of" not in notebook


# --- ties at a gallery's cut --------------------------------------------------------------

def test_a_gallery_cut_inside_a_tie_says_so(tmp_path):
    for i in range(46):
        make_image(tmp_path / "set" / f"{i:02d}.png", (i, 20, 30))
    image_set = load_image_set(tmp_path / "set")
    names = [item.source for item in image_set.items]
    tied = top_images(image_set, np.full(46, 0.02), {}, k=6, thumbnails=ThumbnailCache(), names=names)
    assert str(tied.tie) == "6 images tied at 0.0200 with 40 others; shown in set order"
    assert [image.name for image in tied.images] == names[:6]
    scores = np.r_[0.9, np.full(45, 0.02)]
    assert str(top_images(image_set, scores, {}, k=2, thumbnails=ThumbnailCache(), names=names).tie) == \
        "1 image tied at 0.0200 with 44 others; shown in set order"
    assert top_images(image_set, np.arange(46.0), {}, k=6, thumbnails=ThumbnailCache(), names=names).tie is None
    gallery = ImageGallery(hypothesis="x", side="A", lowest=False, images=tied.images, tie=tied.tie)
    assert str(gallery).endswith("6 images tied at 0.0200 with 40 others; shown in set order")
    assert "6 images tied at 0.0200 with 40 others" in PageParser(gallery._repr_html_()).all_text


def test_report_gallery_says_tie(named_result, tmp_path):
    named_result.scores_b[:, 0] = 0.02  # every bird scores the same for "red things"
    text = page_text(write_outputs(named_result, tmp_path / "out", top_images=2)["html"])
    assert "Highest-scoring in B (birds) 2 images tied at 0.0200 with 2 others; shown in set order" in text


def test_rank_json_names_the_sets(named_dirs):
    dogs, birds = named_dirs
    result = run_cli("rank", str(dogs), str(birds), "-H", "red things", "--name-b", "garden birds", "--json", "-")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["set_a"], payload["set_b"]) == ("dogs", "garden birds")


def test_compare_json_and_csv_name_the_sets(named_dirs):
    dogs, birds = named_dirs
    document = json.loads(run_cli("compare", str(dogs), str(birds), "--json", "-", "-q").stdout)
    assert (document["set_a"], document["set_b"]) == ("dogs", "birds")
    lines = run_cli("compare", str(dogs), str(birds), "--csv", "-", "-q").stdout.splitlines()
    assert lines[0].endswith(",set_a,set_b") and lines[1].endswith(",dogs,birds")
