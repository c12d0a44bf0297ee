"""The kinds of image set behind ``load_image_set``: which module loads what, the locators
that say where an image's bytes are, and brace patterns."""

from __future__ import annotations

import pickle

import pytest
from PIL import Image

from visdiff.errors import InputError
from visdiff.image_sets import FileLocator, ImageItem
from visdiff.sources import SOURCES, existing_path, folder, load_image_set, path_list, pil_images, table, webdataset
from visdiff.sources.braces import expand_braces

from .conftest import make_image
from .test_webdataset import write_tar


def test_each_kind_of_set_is_loaded_by_its_module(image_dirs, tmp_path):
    a, _ = image_dirs
    pngs = sorted(a.iterdir())
    (tmp_path / "set.csv").write_text("path\n" + "\n".join(str(p) for p in pngs) + "\n")
    write_tar(tmp_path / "set.tar", {p.name: p.read_bytes() for p in pngs})
    given = {table: tmp_path / "set.csv", folder: a, webdataset: tmp_path / "set.tar",
             pil_images: [Image.open(p) for p in pngs], path_list: pngs}
    for kind, source in given.items():
        as_given = existing_path(source) if kind in (table, folder, webdataset) else list(source)
        assert next(k for k in SOURCES if k.accepts(as_given)) is kind
        assert len(load_image_set(source)) == 6
    # Order matters: a datasets folder is a table before it is a folder.
    assert SOURCES.index(table) < SOURCES.index(folder) and SOURCES.index(pil_images) < SOURCES.index(path_list)


def test_an_item_given_a_path_or_a_file_locator_is_one_item(tmp_path):
    png = make_image(tmp_path / "x.png", (1, 2, 3))
    by_path = ImageItem(key="k", source="x", path=png)
    by_locator = ImageItem(key="k", source="x", locator=FileLocator(png))
    assert by_path == by_locator and by_locator.path == png and by_path.locator == FileLocator(png)
    assert pickle.loads(pickle.dumps(by_locator)).read() == png.read_bytes()
    [loaded] = load_image_set([png]).release_bytes()
    assert loaded.data is None and loaded.read() == png.read_bytes()


def test_an_in_memory_image_has_no_bytes_to_read():
    [item] = load_image_set([Image.new("RGB", (8, 8))])
    assert item.locator is None and item.open().size == (8, 8)
    with pytest.raises(InputError, match=r"<image 0>: an in-memory image has no encoded bytes"):
        item.read()


@pytest.mark.parametrize(("pattern", "names"), [
    ("s-{000..002}.tar", ["s-000.tar", "s-001.tar", "s-002.tar"]),
    ("{train,val}-{0..1}.tar", ["train-0.tar", "train-1.tar", "val-0.tar", "val-1.tar"]),
    ("{a,{b,c}}.tar", ["a.tar", "b.tar", "c.tar"]),
    ("s-{3..1}.tar", ["s-3.tar", "s-2.tar", "s-1.tar"]),
    ("plain{}.tar", ["plain{}.tar"]),
    ("s-{x}.tar", ["s-{x}.tar"]),
    ("s-{0..1.tar", ["s-{0..1.tar"]),
])
def test_brace_patterns_expand_as_in_the_shell(pattern, names):
    assert expand_braces(pattern) == names


def test_existing_path_takes_a_pattern_whose_shards_exist(tmp_path):
    for i in range(2):
        write_tar(tmp_path / f"s-{i}.tar", {})
    assert existing_path(tmp_path / "s-{0..1}.tar") == tmp_path / "s-{0..1}.tar"
    with pytest.raises(InputError, match="no such file or folder"):
        existing_path(tmp_path / "missing")
