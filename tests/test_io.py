"""Image sets: sources, content hashing, decoding to RGB and bad-input handling."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from PIL import Image

from visdiff.errors import InputError
from visdiff.decoding import decode_image_bytes, hash_bytes
from visdiff.image_sets import ImageSet
from visdiff.sources import load_image_set
from visdiff.sources.folder import list_image_files

from .conftest import make_image


def jpeg_bytes(size=(64, 48), color=(10, 120, 200), **save_options) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG", **save_options)
    return buffer.getvalue()


def truncated_jpeg(path):
    """A JPEG whose header is intact but whose pixel data stops half way."""
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


# --- sources -------------------------------------------------------------------------


def test_folder_is_recursive_sorted_and_lists_what_is_not_an_image(tmp_path):
    make_image(tmp_path / "b.png", (1, 2, 3))
    make_image(tmp_path / "a.JPG", (4, 5, 6))
    make_image(tmp_path / "sub" / "deeper" / "c.webp", (7, 8, 9))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "model.pt").write_bytes(b"\0" * 10)
    image_set = load_image_set(tmp_path)
    assert [p.split("/")[-1] for p in (i.source for i in image_set)] == ["a.JPG", "b.png", "c.webp"]
    assert image_set.name == tmp_path.name
    assert [(s.source.split("/")[-1], s.reason) for s in image_set.skipped] == [
        ("model.pt", "not an image file"), ("notes.txt", "not an image file")]


def test_links_to_folders_are_followed_once(tmp_path):
    """A set folder of links to class folders lost every image in them (os.walk does not
    follow links by default); a link back up or a second link to a folder is read once."""
    make_image(tmp_path / "elsewhere" / "tench" / "t.png", (1, 2, 3))
    make_image(tmp_path / "set" / "own" / "o.png", (4, 5, 6))
    (tmp_path / "set" / "tench").symlink_to(tmp_path / "elsewhere" / "tench")
    (tmp_path / "set" / "tench again").symlink_to(tmp_path / "elsewhere" / "tench")
    (tmp_path / "set" / "own" / "loop").symlink_to(tmp_path / "set")
    image_set = load_image_set(tmp_path / "set")
    assert sorted(i.source.split("/")[-1] for i in image_set) == ["o.png", "t.png"]
    assert sorted((s.source.split("/set/")[-1], s.reason) for s in image_set.skipped) == [
        ("own/loop", "link to a folder already read"), ("tench again", "link to a folder already read")]


def test_one_image_given_as_a_set_is_told_to_give_its_folder(tmp_path):
    """`visdiff compare A/*.jpg B/*.jpg`: the shell makes every file an argument of its own."""
    image = make_image(tmp_path / "a" / "x.jpg", (1, 2, 3))
    with pytest.raises(InputError, match=r"x\.jpg is neither a folder nor a table .*\); give the folder .*/a "
                                         r"\(a shell pattern like .*/a/\*\.jpg passes each file as a set\)$"):
        load_image_set(image)
    with pytest.raises(InputError, match=r"notes\.txt is neither a folder nor a table [^;]*$"):
        (tmp_path / "notes.txt").write_text("x")
        load_image_set(tmp_path / "notes.txt")


def test_list_of_paths_keeps_order_and_reports_missing(tmp_path):
    first = make_image(tmp_path / "z.png", (1, 1, 1))
    second = make_image(tmp_path / "a.png", (2, 2, 2))
    image_set = load_image_set([str(first), second, tmp_path / "gone.png"])
    assert [i.path for i in image_set] == [first, second]
    assert [(s.source, s.reason) for s in image_set.skipped] == [(str(tmp_path / "gone.png"), "no such file")]


def test_key_is_sha256_of_bytes_not_path(tmp_path):
    a = make_image(tmp_path / "a.png", (9, 9, 9))
    copy = tmp_path / "elsewhere" / "copy.png"
    copy.parent.mkdir()
    copy.write_bytes(a.read_bytes())
    image_set = load_image_set([a, copy])
    assert image_set.keys == [hash_bytes(a.read_bytes())] * 2


def test_csv_paths_are_relative_to_the_csv(tmp_path):
    make_image(tmp_path / "data" / "imgs" / "x.png", (1, 2, 3))
    make_image(tmp_path / "data" / "imgs" / "y.png", (3, 2, 1))
    csv_path = tmp_path / "data" / "set.csv"
    csv_path.write_text("path,group_name\nimgs/x.png,dogs\nimgs/y.png,dogs\n", encoding="utf-8")
    image_set = load_image_set(csv_path)
    assert [i.path for i in image_set] == [tmp_path / "data" / "imgs" / "x.png", tmp_path / "data" / "imgs" / "y.png"]
    assert image_set.name == "dogs"


def test_csv_with_several_groups_needs_group(tmp_path):
    make_image(tmp_path / "x.png", (1, 2, 3))
    make_image(tmp_path / "y.png", (3, 2, 1))
    csv_path = tmp_path / "pairs.csv"
    # A byte-order mark, as spreadsheets write, must not break the header.
    csv_path.write_text("\ufeffpath,group_name\nx.png,cats\ny.png,dogs\ny.png,dogs\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"groups \['cats', 'dogs'\]; choose one \(group= in Python"):
        load_image_set(csv_path)
    assert len(load_image_set(csv_path, group="dogs")) == 2
    with pytest.raises(InputError, match="no group 'birds'"):
        load_image_set(csv_path, group="birds")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file_id,label\nx.png,a\n", r"has no image column; expected one of path, image.*found columns \['file_id', 'label'\]"),
        ("", "is empty: expected a header with a path column"),
        ("path,group_name\n,cats\n", "row 1: empty 'path'"),
    ],
)
def test_malformed_csv_is_an_input_error(tmp_path, content, message):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_image_set(csv_path)


def test_non_utf8_csv_is_an_input_error(tmp_path):
    csv_path = tmp_path / "latin1.csv"
    csv_path.write_bytes("path,group_name\ncaf\xe9.png,a\n".encode("latin-1"))
    with pytest.raises(InputError, match="not a readable UTF-8 CSV"):
        load_image_set(csv_path)


def test_pil_images_are_keyed_by_pixels():
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    image_set = load_image_set([red, red.copy(), Image.new("RGB", (8, 8), (0, 0, 255))])
    assert len(image_set) == 3
    assert image_set.keys[0] == image_set.keys[1] != image_set.keys[2]
    assert image_set.items[0].open().getpixel((0, 0)) == (255, 0, 0)


def test_pil_keys_follow_what_is_embedded_palette_and_exif_included():
    first, second = Image.new("P", (4, 4), 1), Image.new("P", (4, 4), 1)
    first.putpalette([0, 0, 0, 255, 0, 0])
    second.putpalette([0, 0, 0, 0, 0, 255])  # same indices, different colours
    rotated = Image.open(io.BytesIO(_exif_rotated_jpeg()))
    upright = Image.open(io.BytesIO(_exif_rotated_jpeg(orientation=1)))
    keys = load_image_set([first, second, rotated, upright]).keys
    assert len(set(keys)) == 4


def _exif_rotated_jpeg(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    gradient = np.tile(np.arange(64, dtype=np.uint8), (32, 1))
    buffer = io.BytesIO()
    Image.fromarray(gradient).convert("RGB").save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def test_image_set_passes_through_and_other_objects_are_refused(tmp_path):
    image_set = ImageSet(())
    assert load_image_set(image_set) is image_set
    with pytest.raises(InputError, match="cannot use int as an image source"):
        load_image_set([1, 2])
    for not_a_set in (5, None, b"a.png", {"path": "a.png"}, Image.new("RGB", (4, 4))):
        with pytest.raises(InputError, match=f"cannot use {type(not_a_set).__name__} as an image set: give a folder"):
            load_image_set(not_a_set)
    with pytest.raises(InputError, match="neither a folder nor a table of images"):
        load_image_set(make_image(tmp_path / "one.png", (1, 1, 1)))


# --- decoding ------------------------------------------------------------------------


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees: portrait
    image = decode_image_bytes(jpeg_bytes(size=(64, 32), exif=exif.tobytes()))
    assert image.size == (32, 64)
    assert image.mode == "RGB"


def _palette_image(color) -> Image.Image:
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, *color])
    return image


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("image", "fmt", "expected_pixel"),
    [
        (Image.new("L", (4, 4), 100), "PNG", (100, 100, 100)),
        (Image.new("1", (4, 4), 1), "PNG", (255, 255, 255)),
        (_palette_image((0, 0, 200)), "PNG", (0, 0, 200)),
        (Image.new("RGBA", (4, 4), (200, 0, 0, 255)), "PNG", (200, 0, 0)),
        (Image.new("RGBA", (4, 4), (200, 0, 0, 0)), "PNG", (255, 255, 255)),  # transparent -> white
        (Image.new("LA", (4, 4), (50, 255)), "PNG", (50, 50, 50)),
        (Image.new("CMYK", (4, 4), (0, 0, 0, 0)), "JPEG", (255, 255, 255)),
        (Image.new("I;16", (4, 4), 65535), "PNG", (255, 255, 255)),
        (Image.new("I;16", (4, 4), 32768), "PNG", (127, 127, 127)),
        (Image.new("RGB", (4, 4), (10, 20, 30)), "TIFF", (10, 20, 30)),
    ],
    ids=["L", "1", "P", "RGBA", "RGBA-transparent", "LA", "CMYK", "I16-max", "I16-half", "TIFF"],
)
def test_modes_are_converted_to_8bit_rgb(image, fmt, expected_pixel):
    decoded = decode_image_bytes(_encode(image, fmt))
    assert decoded.mode == "RGB"
    assert decoded.size == image.size
    # JPEG is lossy: allow a little slack there.
    assert np.abs(np.subtract(decoded.getpixel((1, 1)), expected_pixel)).max() <= (2 if fmt == "JPEG" else 0)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 16, dtype=np.uint16).reshape(4, 4)
    decoded = decode_image_bytes(_encode(Image.fromarray(ramp), "PNG"))
    values = np.asarray(decoded)[..., 0].ravel()
    assert values[0] == 0 and values[-1] == 255
    assert np.all(np.diff(values.astype(int)) > 0)  # still a ramp, not saturated at 255


@pytest.mark.parametrize("pixels", [1_500, 2_500], ids=["above-limit-warning", "above-twice-limit"])
def test_decompression_bomb_is_refused(tmp_path, monkeypatch, pixels):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    path = tmp_path / "bomb.png"
    Image.new("L", (pixels // 10, 10)).save(path)
    with pytest.raises(InputError, match="decompression bomb"):
        decode_image_bytes(path.read_bytes(), source=str(path))
    good = make_image(tmp_path / "small.png", (1, 1, 1), size=(20, 20))
    image_set = load_image_set([path, good])
    assert [i.path for i in image_set] == [good]
    assert "decompression bomb" in image_set.skipped[0].reason


def test_decode_errors_name_the_source():
    with pytest.raises(InputError, match="x.jpg: empty file"):
        decode_image_bytes(b"", source="x.jpg")
    with pytest.raises(InputError, match="x.jpg: not an image file"):
        decode_image_bytes(b"hello world", source="x.jpg")


def test_truncated_jpeg_fails_at_decode(tmp_path):
    path = truncated_jpeg(tmp_path / "cut.jpg")
    with pytest.raises(InputError, match="cut.jpg: unreadable image"):
        decode_image_bytes(path.read_bytes(), source=str(path))


# --- bad input in sets ---------------------------------------------------------------


def test_bad_files_are_skipped_with_one_warning_each(tmp_path, caplog):
    folder = tmp_path / "set"
    make_image(folder / "good1.png", (1, 2, 3))
    make_image(folder / "good2.jpg", (3, 2, 1))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("definitely not a PNG")
    (folder / "header_cut.jpg").write_bytes(jpeg_bytes()[:20])
    (folder / "broken_link.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (folder / "dir.jpg").mkdir()  # a folder with an image name is searched, not read
    make_image(folder / "dir.jpg" / "inner.png", (5, 5, 5))
    with caplog.at_level(logging.WARNING, logger="visdiff"):
        image_set = load_image_set(folder)
    assert sorted(i.source.rsplit("/", 1)[-1] for i in image_set) == ["good1.png", "good2.jpg", "inner.png"]
    reasons = {s.source.rsplit("/", 1)[-1]: s.reason for s in image_set.skipped}
    assert reasons["empty.jpg"] == "empty file"
    assert reasons["text.png"] == "not an image file"
    # Cut inside its header: PIL cannot even tell the format.
    assert reasons["header_cut.jpg"] == "not an image file"
    assert reasons["broken_link.jpg"] == "broken link"
    assert len(reasons) == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4 and all(w.startswith("skipping ") for w in warnings)


def test_unreadable_path_in_a_list_is_skipped(tmp_path):
    # chmod 000 does not stop root; a folder named like an image cannot be read as a file.
    (tmp_path / "folder.jpg").mkdir()
    good = [make_image(tmp_path / f"{i}.png", (i, i, i)) for i in range(2)]
    image_set = load_image_set([tmp_path / "folder.jpg", *good])
    assert len(image_set) == 2
    assert image_set.skipped[0].reason == "not a regular file (folder)"


def test_empty_and_missing_folders_are_input_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(InputError, match="contains no image files"):
        load_image_set(tmp_path / "empty")
    with pytest.raises(InputError, match="no such file or folder"):
        load_image_set(tmp_path / "missing")


def test_fewer_than_two_readable_images_is_an_input_error(tmp_path):
    make_image(tmp_path / "only.png", (1, 2, 3))
    (tmp_path / "bad.png").write_text("nope")
    with pytest.raises(InputError, match=r"1 readable image\(s\) \(1 unreadable files skipped\); at least 2 needed"):
        load_image_set(tmp_path, name="A").require(2)


def test_list_image_files_ignores_non_images(tmp_path):
    make_image(tmp_path / "x.bmp", (0, 0, 0))
    (tmp_path / "x.bmp.txt").write_text("")
    scan = list_image_files(tmp_path)
    assert scan.files == [tmp_path / "x.bmp"]
    assert [(s.source, s.reason) for s in scan.skipped] == [(str(tmp_path / "x.bmp.txt"), "not an image file")]
