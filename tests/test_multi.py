"""More than two sets: ``visdiff.compare_many`` and ``visdiff compare S1 S2 S3`` end to end on
generated images with the offline profile (and the loopback LLM server where the proposer is
an LLM): each set against the union of the others, one embedding pass, balanced proposer
contrast, one table / report section / JSON entry per set."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

import visdiff
from tests.cli_helpers import run_cli
from tests.conftest import make_image
from tests.fake_openai import Reply
from tests.test_report import PageParser
from visdiff.errors import InputError
from visdiff.image_sets import ImageItem, ImageSet
from visdiff.multi import MultiComparison, balanced_contrast
from visdiff.report import write_outputs

pytest_plugins = ["tests.fake_openai"]

COLOURS = {"red": (200, 40, 40), "blue": (40, 40, 200), "green": (40, 190, 40)}
SIZES = {"red": 6, "blue": 6, "green": 9}


def make_sets(root, sizes=SIZES) -> dict:
    folders = {}
    for k, (name, n) in enumerate(sizes.items()):
        for i in range(n):
            make_image(root / name / f"{name}{i}.png", COLOURS[name], noise_seed=100 * k + i)
        folders[name] = root / name
    return folders


@pytest.fixture(scope="module")
def three_sets(tmp_path_factory):
    """red (6), blue (6), green (9 + a copy of red0: one image in two sets)."""
    root = tmp_path_factory.mktemp("sets")
    folders = make_sets(root)
    shutil.copy(folders["red"] / "red0.png", folders["green"] / "copy_of_red0.png")
    return folders


@pytest.fixture(scope="module")
def offline_run(three_sets, tmp_path_factory):
    """One compare_many run (offline profile) shared by the API tests, and its cache dir."""
    cache = tmp_path_factory.mktemp("multi-cache")
    with pytest.MonkeyPatch.context() as patch, _captured_warnings() as warnings:
        patch.setenv("VISDIFF_CACHE_DIR", str(cache))
        result = visdiff.compare_many(list(three_sets.values()), profile="offline", show_progress=False)
    return result, cache, warnings


class _captured_warnings:
    """The visdiff warnings logged inside the block (a module fixture cannot use caplog)."""

    def __enter__(self):
        self.records, self.logger = [], logging.getLogger("visdiff")
        self.handler, self.level = logging.Handler(logging.WARNING), self.logger.level
        self.handler.emit = self.records.append
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.WARNING)  # an earlier CLI test may have set --quiet's level
        return self.records

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)


def test_each_set_is_ranked_against_the_union_of_the_others(offline_run, three_sets):
    result, cache, _ = offline_run
    assert result.names == ["red", "blue", "green"]
    sizes = {"red": 6, "blue": 6, "green": 10}
    for name, one in result.results.items():
        others = [n for n in result.names if n != name]
        assert one.set_a.name == name and len(one.set_a) == sizes[name]
        assert one.set_b.name == " + ".join(others) and len(one.set_b) == sum(sizes[n] for n in others)
        assert one.config["set"] == name and one.config["against"] == others
        assert one.scores_a.shape == (sizes[name], len(one.table))
        assert one.scores_b.shape == (len(one.set_b), len(one.table))
        # The offline profile separates solid colours: every set's best phrase is clearly its own.
        assert one.table.iloc[0]["auroc"] > 0.9 and one.table.iloc[0]["significant"]
    # Statistics = a plain two-set ranking of the set against the other sets' images pooled.
    red = result["red"]
    pooled = [item.source for item in result["red"].set_b.items]
    direct = visdiff.rank(list(red.table["hypothesis"]), three_sets["red"], pooled, profile="offline",
                          cache_dir=cache, show_progress=False)
    merged = red.table.merge(direct, on="hypothesis", suffixes=("", "_direct"))
    assert len(merged) == len(red.table)
    for column in ("auroc", "auroc_low", "mean_a", "mean_b", "p_greater", "q_value"):
        np.testing.assert_allclose(merged[column], merged[f"{column}_direct"], rtol=1e-6)


def test_one_embedding_pass_and_shared_images_count_in_both(offline_run):
    result, _, warnings = offline_run
    # 21 distinct images (the copy of red0 is one of red's): each encoded once for all comparisons.
    assert result.config["embeddings"]["encoded"] == 21
    assert result.config["shared_images"] == {"red & green": 1}
    assert [r.getMessage() for r in warnings if "share" in r.getMessage()] == [
        "sets 'red' and 'green' share 1 image(s) (same content); each counts in both sets"]
    red0 = result["red"].set_a.items[0].key
    assert red0 in result["green"].set_a.keys and red0 in result["red"].set_b.keys
    assert result.config["sets"] == {"red": {"n_images": 6, "n_skipped": 0}, "blue": {"n_images": 6, "n_skipped": 0},
                                     "green": {"n_images": 10, "n_skipped": 0}}


def test_timings_are_per_set_and_for_the_whole_run(offline_run):
    result, _, _ = offline_run
    assert {"load_images", "embed", "propose", "score", "rank", "total"} <= set(result.timings)
    for one in result.results.values():
        assert "embed" not in one.timings and "load_images" not in one.timings  # done once, for all sets
        assert {"propose", "score", "rank"} <= set(one.timings)
    per_set = sum(one.timings["total"] for one in result.results.values())
    assert per_set <= result.timings["total"]


def test_table_csv_json_and_report_have_one_part_per_set(offline_run, tmp_path):
    result, _, _ = offline_run
    table = result.table
    assert list(table.columns[:2]) == ["set", "hypothesis"]
    assert table.groupby("set", sort=False).size().to_dict() == {n: len(r.table) for n, r in result.results.items()}

    paths = write_outputs(result, tmp_path / "out")
    csv = pd.read_csv(paths["csv"])
    assert list(csv.columns[:3]) == ["set", "rank", "hypothesis"]
    assert csv.groupby("set", sort=False)["rank"].max().to_dict() == {n: len(r.table) for n, r in result.results.items()}
    payload = json.loads(paths["json"].read_text())
    assert [c["set"] for c in payload["comparisons"]] == ["red", "blue", "green"]
    for entry, one in zip(payload["comparisons"], result.results.values()):
        assert entry["sets"]["a"]["n_images"] == len(one.set_a) and entry["sets"]["b"]["name"] == one.set_b.name
        assert [r["hypothesis"] for r in entry["results"]] == list(one.table["hypothesis"])
        assert np.shape(entry["scores"]["b"]) == one.scores_b.shape
    assert payload["config"]["shared_images"] == {"red & green": 1} and "embed" in payload["timings"]

    page = PageParser(paths["html"].read_text(encoding="utf-8"))
    ids = [attrs["id"] for _, attrs in page.elements if "id" in attrs]
    assert len(ids) == len(set(ids))  # every anchor unique across the sections
    assert [i for i in ids if i.endswith("-set")] == ["s1-set", "s2-set", "s3-set"]
    links = [a["href"] for a in page.tags("a")]
    assert {"#s1-set", "#s2-set", "#s3-set"} <= set(links) and all(link[1:] in ids for link in links)
    assert len(page.rows("ranking")) == len(table)
    assert "How does each of 3 image sets differ from the others?" in page.all_text

    html = result._repr_html_()
    assert all(f"{name} vs the others" in html for name in result.names)


def test_balanced_contrast_takes_as_many_of_each_set_as_the_smallest():
    def image_set(name, n):
        return ImageSet(tuple(ImageItem(key=f"{name}{i}".ljust(64, "0"), source=f"{name}{i}") for i in range(n)),
                        name=name)

    small, big = image_set("small", 3), image_set("big", 10)
    contrast = balanced_contrast([small, big], "small + big", np.random.default_rng((0, 1)))
    sources = [item.source for item in contrast.items]
    assert sources[:3] == ["small0", "small1", "small2"]  # the smallest whole, in order
    assert len(sources) == 6 and all(s.startswith("big") for s in sources[3:])
    assert contrast.name == "small + big"
    again = balanced_contrast([small, big], "small + big", np.random.default_rng((0, 1)))
    other = balanced_contrast([small, big], "small + big", np.random.default_rng((1, 1)))
    assert again == contrast and other != contrast  # seeded


def test_the_proposer_reads_each_set_against_a_balanced_sample_of_the_others(tmp_path, fake_openai):
    folders = make_sets(tmp_path, {"red": 3, "blue": 3, "green": 9})
    fake_openai.respond = lambda request: Reply("* animals\n* dark, underexposed photos")  # concept names: no text model to load
    result = visdiff.compare_many(folders, profile="offline", proposer="llm:fake-model", base_url=fake_openai.base_url,
                                  rounds=1, samples_per_set=20, show_progress=False)
    red_round, = result["red"].proposal_rounds
    shown = [im["source"] for im in red_round["images_b"]]
    # As many of green (9) as of blue (3), though the statistics use all 12.
    assert sum("/blue/" in s for s in shown) == 3 and sum("/green/" in s for s in shown) == 3
    assert len(result["red"].set_b) == 12 and result["red"].config["contrast_images"] == 6
    green_round, = result["green"].proposal_rounds
    assert len(green_round["images_b"]) == 6 and len(green_round["images_a"]) == 9
    assert [r["direction"] for one in result.results.values() for r in one.proposal_rounds] == ["red", "blue", "green"]
    assert len(fake_openai.requests) == 3


def test_usage_errors_before_any_image_is_read(three_sets, monkeypatch):
    import visdiff.multi

    monkeypatch.setattr(visdiff.multi, "load_image_set", lambda *a, **k: pytest.fail("an image set was read"))
    sets = list(three_sets.values())
    with pytest.raises(InputError, match="compares two sets; with several"):
        MultiComparison(sets, profile="offline", both_directions=True)
    with pytest.raises(InputError, match="'x' is given more than once"):
        MultiComparison(sets, profile="offline", names=["x", "y", "x"])
    with pytest.raises(InputError, match="2 names for 3 image sets"):
        MultiComparison(sets, profile="offline", names=["x", "y"])
    with pytest.raises(InputError, match="at least 2 image sets, got 1"):
        MultiComparison(sets[:1], profile="offline")


# --- the command line ---------------------------------------------------------------------------


def test_cli_three_folders(three_sets, tmp_path):
    out = tmp_path / "out"
    args = ["compare", *map(str, three_sets.values()), "--profile", "offline", "--top", "2", "--out", str(out)]
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    for name, folder in three_sets.items():
        others = " + ".join(str(f) for n, f in three_sets.items() if n != name)
        assert f"A = {folder} vs B = {others}" in " ".join(result.stdout.split())  # one table per set
    assert json.loads((out / "results.json").read_text())["comparisons"][2]["set"] == str(three_sets["green"])

    as_json = run_cli(*args[:-2], "--json", "-")
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.stdout)
    assert {r["set"] for r in payload["results"]} == {str(f) for f in three_sets.values()}
    assert set(payload["sets"]) == {str(f) for f in three_sets.values()} and "embed" in payload["timings"]


@pytest.fixture
def groups_table(tmp_path):
    folders = make_sets(tmp_path, {"red": 4, "blue": 4, "green": 4})
    rows = [{"path": str(p.relative_to(tmp_path)), "colour": name}
            for name, folder in folders.items() for p in sorted(folder.iterdir())]
    table = tmp_path / "images.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def test_cli_groups_of_one_table(groups_table):
    base = ["compare", str(groups_table), "--group-col", "colour", "--profile", "offline", "--json", "-"]
    three = run_cli(*base, "--group", "red", "--group", "blue", "--group", "green")
    assert three.exit_code == 0, three.output
    assert [r["set"] for r in json.loads(three.stdout)["results"]][0] == "red"
    assert set(json.loads(three.stdout)["sets"]) == {"red", "blue", "green"}
    # Two --group values are the two-set comparison, exactly as --group-a/--group-b.
    pair = json.loads(run_cli(*base, "--group", "red", "--group", "blue").stdout)
    classic = json.loads(run_cli(*base, "--group-a", "red", "--group-b", "blue").stdout)
    assert "set" not in pair["results"][0] and pair["results"] == classic["results"]


@pytest.mark.parametrize("extra, message", [
    (["--group", "red", "--group", "purple", "--group", "teal"],
     "has no group 'purple', 'teal' in column 'colour'; groups: ['blue', 'green', 'red']"),
    (["--group", "red"], "--group 'red' gives one set; give --group once per set, at least twice"),
    (["--group", "red", "--group", "blue", "--group-a", "green"], "use it instead of --group-a/--group-b"),
    (["--group", "red", "--group", "blue", "--group", "green", "--both-directions"], "compares two sets; with several"),
    (["--group", "red", "--group", "blue", "--group", "green", "--holdout", "0.5"], "with several sets it is not supported"),
    (["--group", "red", "--group", "blue", "--group", "red"], "'red' is given more than once"),
])
def test_cli_group_usage_errors_exit_2(groups_table, extra, message):
    result = run_cli("compare", str(groups_table), "--group-col", "colour", "--profile", "offline", *extra)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.output


def test_cli_groups_of_a_folder_exit_2(three_sets):
    folder = three_sets["red"]
    result = run_cli("compare", str(folder), "--group", "red", "--group", "blue", "--profile", "offline")
    assert result.exit_code == 2, result.output
    assert f"a group or --where selects rows of a table; {folder} is not one" in " ".join(result.stderr.split())


def test_cli_more_sets_with_group_a_is_exit_2(groups_table, three_sets):
    result = run_cli("compare", str(groups_table), str(three_sets["red"]), str(three_sets["blue"]),
                                 "--group-col", "colour", "--group-a", "red", "--profile", "offline")
    assert result.exit_code == 2
    assert "--group-a/--group-b pick two sets" in result.stderr
