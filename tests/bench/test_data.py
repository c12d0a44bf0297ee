"""Loaders on the release JSONL and the upstream CSV layouts (tests/data/minibench), data
issues, split selection, and the purity swap."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from visdiff.errors import InputError
from visdiffbench import (
    BenchPair, apply_purity, load_benchmark, load_group_csv, load_jsonl, load_paired_csv,
)

MINIBENCH = Path(__file__).resolve().parents[1] / "data" / "minibench"


def test_release_folder_loads_every_split_jsonl_with_split_from_file_name():
    bench = load_benchmark(MINIBENCH)
    assert [p.id for p in bench.pairs] == ["easy-1", "easy-2", "hard-1"]
    assert bench.splits == ["easy", "hard"]
    first = bench.pairs[0]
    assert (first.name_a, first.name_b, first.difference) == ("red squares", "blue squares", "colour (red vs blue)")
    assert first.images_a[0] == MINIBENCH / "easy" / "1_a" / "000001.png"
    assert len(first.images_a) == len(first.images_b) == 5
    assert all(p.is_file() for pair in bench.pairs for p in pair.images_a + pair.images_b)
    assert bench.issues == ()


def test_paired_csv_takes_split_from_folder_not_the_difficulty_column():
    bench = load_paired_csv(MINIBENCH / "PairedImageSets.csv")
    # The fixture's difficulty column says "hard" for easy folders and vice versa.
    assert [(p.id, p.split) for p in bench.pairs] == [("easy-1", "easy"), ("easy-2", "easy"), ("hard-1", "hard")]
    by_id = {p.id: p for p in bench.pairs}
    assert by_id["hard-1"].name_a == "noisy green images" and by_id["hard-1"].name_b == "smooth green images"
    jsonl = {p.id: p for p in load_benchmark(MINIBENCH).pairs}
    for pair_id, pair in by_id.items():
        assert pair.images_a == jsonl[pair_id].images_a and pair.images_b == jsonl[pair_id].images_b
    assert bench.issues == ()


def test_group_csvs_pair_each_group_with_the_base_and_skip_misc():
    star = load_group_csv(MINIBENCH / "ImageNetStar.csv")
    assert [(p.id, p.name_a, p.name_b) for p in star.pairs] == [
        ("imagenetstar-in_the_snow", "in the snow", "base"), ("imagenetstar-at_night", "at night", "base")]
    assert {p.split for p in star.pairs} == {"imagenetstar"}
    assert all(len(p.images_a) == 3 and len(p.images_b) == 3 for p in star.pairs)
    r = load_benchmark(MINIBENCH / "ImageNetR.csv")
    assert [(p.id, p.name_a, p.name_b) for p in r.pairs] == [("imagenetr-sketch", "sketch", "imagenet")]
    assert r.issues == ()  # misc's absent files are not even looked at


def test_group_csv_without_its_base_group_is_refused(tmp_path):
    csv_path = tmp_path / "ImageNetStar.csv"
    csv_path.write_text("path,group_name\nx.png,red\n")
    with pytest.raises(InputError, match="no base group 'base'"):
        load_group_csv(csv_path)


def test_devbench_style_jsonl_with_ids_in_a_generic_file(tmp_path):
    rows = [{"id": "cat00", "kind": "category", "set1": "red squares", "set2": "blue squares", "difference": "colour",
             "set1_images": [f"images/a{i}.png" for i in range(2)], "set2_images": [f"images/b{i}.png" for i in range(2)]}]
    _copy_images(tmp_path / "images", ["a0", "a1", "b0", "b1"])
    (tmp_path / "devbench.jsonl").write_text(json.dumps(rows[0]) + "\n")
    bench = load_jsonl(tmp_path / "devbench.jsonl")
    assert [(p.id, p.split) for p in bench.pairs] == [("cat00", "devbench")]
    assert bench.pairs[0].images_b == (tmp_path / "images" / "b0.png", tmp_path / "images" / "b1.png")


def test_pairs_jsonl_with_folders_takes_split_from_the_folder_not_difficulty(tmp_path):
    # The shared metadata's pairs.jsonl layout: set folders instead of image lists.
    row = {"id": "easy-2", "difficulty": "hard", "set1": "bright images", "set2": "dark images", "difference": "brightness",
           "set1_folder": "easy/2_a", "set2_folder": "easy/2_b", "n_images": [5, 5]}
    (tmp_path / "pairs.jsonl").write_text(json.dumps(row) + "\n")
    bench = load_jsonl(tmp_path / "pairs.jsonl", root=MINIBENCH)
    pair = bench.pairs[0]
    assert (pair.id, pair.split) == ("easy-2", "easy")
    assert [p.name for p in pair.images_a] == [f"00000{i}.png" for i in range(1, 6)]
    assert pair.images_b[0] == MINIBENCH / "easy" / "2_b" / "000001.png"


def test_escaping_missing_duplicate_and_malformed_entries_are_reported(tmp_path):
    _copy_images(tmp_path / "easy" / "1_a", ["x0", "x1"])
    _copy_images(tmp_path / "easy" / "1_b", ["y0", "y1"])
    outside = tmp_path.parent / "outside.png"
    good = {"set1": "red", "set2": "blue", "difference": "colour",
            "set1_images": ["easy/1_a/x0.png", "easy/1_a/x1.png", "easy/1_a/x1.png", "../outside.png", str(outside)],
            "set2_images": ["easy/1_b/y0.png", "easy/1_b/y1.png", "easy/1_b/gone.png"]}
    lines = [json.dumps(good), "{not json", json.dumps({"set1": "a", "set2": "b", "set1_images": "x"}),
             json.dumps({**good, "set1": "Red "})]
    (tmp_path / "easy.jsonl").write_text("\n".join(lines) + "\n")
    bench = load_benchmark(tmp_path / "easy.jsonl")
    assert [p.id for p in bench.pairs] == ["easy-1"]
    pair = bench.pairs[0]
    assert [p.name for p in pair.images_a] == ["x0.png", "x1.png"] and [p.name for p in pair.images_b] == ["y0.png", "y1.png"]
    kinds = Counter(i.kind for i in bench.issues)
    # Each bad entry of the kept pair and of its duplicate is reported, plus two bad lines.
    assert kinds == {"escapes_root": 4, "duplicate_image": 2, "missing_image": 2, "malformed": 2, "duplicate_pair": 1}
    messages = " | ".join(i.detail for i in bench.issues)
    assert "easy.jsonl:2: not JSON" in messages and "set1_images must be a list" in messages
    assert "'../outside.png' points outside the benchmark root" in messages
    assert "duplicates easy-1" in messages


def test_nothing_usable_is_an_input_error(tmp_path):
    (tmp_path / "easy.jsonl").write_text("[]\n")
    with pytest.raises(InputError, match="no usable pairs.*expected a JSON object"):
        load_benchmark(tmp_path / "easy.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .jsonl or .csv"):
        load_benchmark(tmp_path / "empty")
    with pytest.raises(InputError, match="no such benchmark"):
        load_benchmark(tmp_path / "absent.jsonl")


def test_select_by_split_and_limit_per_split():
    bench = load_benchmark(MINIBENCH)
    assert [p.id for p in bench.select(limit=1).pairs] == ["easy-1", "hard-1"]
    assert [p.id for p in bench.select(splits=["hard"]).pairs] == ["hard-1"]
    with pytest.raises(InputError, match="no split 'medium'"):
        bench.select(splits=["medium"])


def _pair(n_a: int, n_b: int, pair_id: str = "easy-1") -> BenchPair:
    return BenchPair(pair_id, "easy", "a", "b", "", tuple(Path(f"a{i}") for i in range(n_a)),
                     tuple(Path(f"b{i}") for i in range(n_b)))


@pytest.mark.parametrize("purity, swapped", [(1.0, 0), (0.8, 4), (0.5, 10), (0.0, 20)])
def test_purity_swaps_a_fraction_between_sets_without_duplicating(purity, swapped):
    pair = _pair(20, 30)
    mixed, k = apply_purity(pair, purity, seed=3)
    assert k == swapped
    assert len(mixed.images_a) == 20 and len(mixed.images_b) == 30
    # A true swap: every image is in exactly one set, none duplicated or lost.
    everything = mixed.images_a + mixed.images_b
    assert len(set(everything)) == 50 and set(everything) == set(pair.images_a + pair.images_b)
    assert sum(p.name.startswith("b") for p in mixed.images_a) == swapped
    assert sum(p.name.startswith("a") for p in mixed.images_b) == swapped


def test_purity_is_seeded_per_pair_and_capped_by_set_b():
    pair = _pair(10, 10)
    assert apply_purity(pair, 0.5, seed=1) == apply_purity(pair, 0.5, seed=1)
    assert apply_purity(pair, 0.5, seed=1)[0] != apply_purity(pair, 0.5, seed=2)[0]
    assert apply_purity(pair, 0.5, seed=1)[0].images_a != apply_purity(_pair(10, 10, "easy-2"), 0.5, seed=1)[0].images_a
    small_b, k = apply_purity(_pair(20, 9), 0.4, seed=0)
    assert k == 9
    assert all(p.name.startswith("a") for p in small_b.images_b)
    assert sum(p.name.startswith("a") for p in small_b.images_a) == 11
    with pytest.raises(InputError, match="purity must be between 0 and 1"):
        apply_purity(pair, 1.5)


def _copy_images(folder: Path, stems: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    source = MINIBENCH / "easy" / "1_a" / "000001.png"
    for stem in stems:
        shutil.copy(source, folder / f"{stem}.png")


@pytest.mark.parametrize("name", ["easy.jsonl", "PairedImageSets.csv"])
def test_benchmark_files_saved_with_a_byte_order_mark(name, tmp_path):
    """A BOM made the first JSONL line malformed and the first CSV header unknown."""
    shutil.copytree(MINIBENCH, tmp_path / "minibench")
    path = tmp_path / "minibench" / name
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with_bom = load_benchmark(path)
    plain = load_benchmark(MINIBENCH / name)
    def summary(bench):
        return [(p.id, p.name_a, p.name_b, len(p.images_a), len(p.images_b)) for p in bench.pairs], len(bench.issues)

    assert summary(with_bom) == summary(plain)
