"""Tables as image sets: CSV, Parquet (paths or image bytes), a datasets save_to_disk folder;
group and filter columns on every command, with the table given once."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from visdiff.cli import app
from visdiff.errors import InputError
from visdiff.decoding import hash_bytes
from visdiff.sources import load_image_set

from .conftest import make_image

runner = CliRunner()


def png_bytes(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 20), color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def path_table(tmp_path):
    """A Parquet table of relative paths: 3 red and 3 blue images, each in a val and a train row."""
    rows = []
    for i in range(3):
        for label, color in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
            make_image(tmp_path / "imgs" / f"{label}{i}.png", color, noise_seed=i)
            rows += [{"path": f"imgs/{label}{i}.png", "label": label, "split": split} for split in ("val", "train")]
    table = tmp_path / "table.parquet"
    pd.DataFrame(rows).to_parquet(table)
    return table


def test_parquet_paths_with_group_column_and_filters(path_table):
    image_set = load_image_set(path_table, group="red", group_column="label", where={"split": "val"})
    assert [item.path.name for item in image_set] == ["red0.png", "red1.png", "red2.png"]
    assert image_set.name == "red"


def test_parquet_image_bytes(tmp_path):
    images = [png_bytes((10 * i, 0, 0)) for i in range(3)]
    table = tmp_path / "bytes.parquet"
    pd.DataFrame({"image": images, "group_name": ["g"] * 3}).to_parquet(table)
    image_set = load_image_set(table)
    assert image_set.keys == [hash_bytes(b) for b in images]
    assert image_set.items[1].open().getpixel((0, 0)) == (10, 0, 0)


def test_an_undecodable_row_is_named_by_its_row_in_the_table(tmp_path):
    images = [png_bytes((10 * i, 0, 0)) for i in range(6)]
    images[4] = b"\x89PNG garbage"
    table = tmp_path / "bytes.parquet"
    pd.DataFrame({"image": images, "group_name": ["a", "b"] * 3}).to_parquet(table, index=False)
    image_set = load_image_set(table, group="a")
    assert len(image_set) == 2
    assert [skipped.source for skipped in image_set.skipped] == [f"{table}[row 5]"]  # the 3rd of group a


def test_datasets_save_to_disk_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    colors = [(200, 0, 0)] * 3 + [(0, 0, 200)] * 3
    dataset = datasets.Dataset.from_dict(
        {"image": [Image.new("RGB", (16, 16), c) for c in colors], "label": ["red"] * 3 + ["blue"] * 3}
    ).cast_column("image", datasets.Image())
    dataset.save_to_disk(str(tmp_path / "saved"))
    image_set = load_image_set(tmp_path / "saved", group="blue", group_column="label")
    assert len(image_set) == 3 and image_set.items[0].open().getpixel((0, 0)) == (0, 0, 200)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"where": {"fold": "1"}}, r"no --where column 'fold'; columns: \['path', 'label', 'split'\]"),
        ({"where": {"split": "test"}}, r"no row has split='test'; values: \['train', 'val'\]"),
        ({"group": "red", "group_column": "colour"}, r"no group column 'colour'"),
        ({"group": "green", "group_column": "label"}, r"no group 'green' in column 'label'; groups: \['blue', 'red'\]"),
    ],
)
def test_unknown_columns_and_values_name_what_exists(path_table, options, message):
    with pytest.raises(InputError, match=message):
        load_image_set(path_table, **options)


def test_a_group_that_where_filtered_out_is_said_so(path_table):
    """It read as if the table had no such group at all."""
    table = pd.read_parquet(path_table)
    table = table[~((table["label"] == "red") & (table["split"] == "train"))]
    table.to_parquet(path_table)
    with pytest.raises(InputError, match=r"no group 'red' in column 'label' among the rows with split=train; "
                                         r"groups: \['blue'\]$"):
        load_image_set(path_table, group="red", group_column="label", where={"split": "train"})


def test_compare_takes_one_table_for_both_sets(path_table):
    result = runner.invoke(app, ["compare", str(path_table), "--group-col", "label", "--group-a", "red",
                                 "--group-b", "blue", "--where", "split=val", "--json", "-", "-q"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["config"]["n_a"], payload["config"]["n_b"]) == (3, 3)


@pytest.mark.parametrize("command", ["rank", "propose", "compare"])
def test_every_set_command_takes_the_table_options(path_table, command):
    extra = ["-H", "red things"] if command == "rank" else []
    result = runner.invoke(app, [command, str(path_table), "--group-col", "label", "--group-a", "red",
                                 "--group-b", "blue", "--where", "split=train", "-q", *extra])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, [command, str(path_table), "--group-col", "label", "--group-a", "red", *extra])
    assert bad.exit_code == 2 and "give set B, or --group-b" in bad.output
    bad = runner.invoke(app, [command, str(path_table), "--group-col", "label", "--group-a", "red",
                              "--group-b", "blue", "--where", "split", *extra])
    assert bad.exit_code == 2 and "expected COLUMN=VALUE" in bad.output


def test_caption_takes_a_group_of_a_table(path_table):
    result = runner.invoke(app, ["caption", str(path_table), "--group-col", "label", "--group", "blue",
                                 "--where", "split=val", "--csv", "-"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 4  # header + 3 images
