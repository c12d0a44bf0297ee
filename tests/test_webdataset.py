"""WebDataset tar shards as image sets: one ``.tar`` or a brace pattern of shards, the image
member of each sample, read in place (also by the commands, end to end)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import pickle
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import visdiff
from visdiff.cli import app
from visdiff.errors import InputError
from visdiff.file_hashes import FileHashMemo
from visdiff.sources import existing_path, load_image_set
from visdiff.sources.webdataset import TarMember

from .conftest import make_image

runner = CliRunner()


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    """An uncompressed tar of ``members`` (name -> bytes), in that order."""
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def samples(pngs: list[Path], first_key: int = 0) -> dict[str, bytes]:
    """WebDataset samples: each image as ``KEY.png`` beside its ``KEY.json``."""
    members = {}
    for key, png in enumerate(pngs, start=first_key):
        members[f"{key:05d}.png"] = png.read_bytes()
        members[f"{key:05d}.json"] = json.dumps({"file": png.name}).encode()
    return members


@pytest.fixture
def shards(image_dirs, tmp_path) -> tuple[str, Path]:
    """Set A (the reddish PNGs of ``image_dirs``) as the pattern of two shards of 3 samples,
    set B (the bluish JPEGs) as one tar."""
    a, b = image_dirs
    reds, blues = sorted(a.iterdir()), sorted(b.iterdir())
    write_tar(tmp_path / "a-000.tar", samples(reds[:3]))
    write_tar(tmp_path / "a-001.tar", samples(reds[3:], first_key=3))
    b_tar = write_tar(tmp_path / "b.tar", {f"{i:05d}.jpg": jpg.read_bytes() for i, jpg in enumerate(blues)})
    return str(tmp_path / "a-{000..001}.tar"), b_tar


@pytest.fixture
def member_reads(monkeypatch) -> list[str]:
    """Every tar member read, by name."""
    seen = []
    original = TarMember.read

    def counting(self):
        seen.append(self.member)
        return original(self)

    monkeypatch.setattr(TarMember, "read", counting)
    return seen


def test_a_tar_is_its_image_members_keyed_by_their_bytes(image_dirs, shards, caplog):
    pattern, _ = shards
    first = Path(pattern.replace("{000..001}", "000"))
    with caplog.at_level(logging.WARNING):
        image_set = load_image_set(first)
    reds = sorted(image_dirs[0].iterdir())[:3]
    assert image_set.keys == [hashlib.sha256(png.read_bytes()).hexdigest() for png in reds]
    assert image_set.keys == load_image_set(reds).keys  # the same images as files
    assert [item.source for item in image_set] == [f"{first}:{key:05d}.png" for key in range(3)]
    assert [item.read() for item in image_set] == [png.read_bytes() for png in reds]
    assert all(item.path is None and isinstance(item.locator, TarMember) for item in image_set)
    assert image_set.name == "a-000.tar"
    assert [(s.source, s.reason) for s in image_set.skipped] == [
        (f"{first}:{key:05d}.json", "not an image file") for key in range(3)]
    assert len(caplog.records) == 1 and "skipping 3 file(s) of" in caplog.text  # one summary, as for folders


def test_a_brace_pattern_is_its_shards_in_order(image_dirs, shards):
    pattern, _ = shards
    image_set = load_image_set(pattern)
    assert image_set.keys == load_image_set(sorted(image_dirs[0].iterdir())).keys
    assert image_set.name == "a-{000..001}.tar"
    assert [item.source.rsplit("/", 1)[1] for item in image_set][2:4] == ["a-000.tar:00002.png",
                                                                         "a-001.tar:00003.png"]


def test_a_pattern_naming_missing_shards_is_an_input_error(shards, tmp_path):
    pattern, _ = shards
    too_many = pattern.replace("001", "002")
    for check in (load_image_set, existing_path):
        with pytest.raises(InputError, match=r"1 of the 3 tar shards of .*a-\{000\.\.002\}\.tar do not exist: "
                                             r".*a-002\.tar$"):
            check(too_many)
        with pytest.raises(InputError, match=r"no file matches .*z-\{0\.\.1\}\.tar: none of its 2 tar shards"):
            check(tmp_path / "z-{0..1}.tar")
    with pytest.raises(InputError, match="no such file or folder: .*gone.tar"):
        load_image_set(tmp_path / "gone.tar")


def test_members_that_cannot_be_used_are_skipped_with_their_reason(tmp_path, caplog):
    png = make_image(tmp_path / "x.png", (1, 2, 3)).read_bytes()
    other = make_image(tmp_path / "y.png", (3, 2, 1)).read_bytes()
    shard = write_tar(tmp_path / "mixed.tar", {
        "0.png": png, "0.seg.png": other, "0.txt": b"a caption", "._0.png": b"macOS metadata",
        "1.png": b"not a png", "2.jpg": b"", "sub/3.png": other,
    })
    with tarfile.open(shard, "a") as tar:  # a link member: never read
        link = tarfile.TarInfo("4.png")
        link.type, link.linkname = tarfile.SYMTYPE, "0.png"
        tar.addfile(link)
    with caplog.at_level(logging.WARNING):
        image_set = load_image_set(shard)
    assert [item.source.split(":")[-1] for item in image_set] == ["0.png", "sub/3.png"]
    assert sorted((s.source.split(":")[-1], s.reason) for s in image_set.skipped) == [
        ("0.seg.png", "another image of sample 0 (0.png is used)"),
        ("0.txt", "not an image file"),
        ("1.png", "not an image file"),
        ("2.jpg", "empty file"),
        ("4.png", "not a regular file (a link or special member of the tar)"),
    ]
    assert "skipping 2 file(s) of" in caplog.text and "other image member(s) skipped" in caplog.text
    assert "skipping " + str(shard) + ":1.png: not an image file" in caplog.text  # one warning each, as files


def test_a_damaged_shard_keeps_the_members_before_the_damage(tmp_path):
    pngs = [make_image(tmp_path / f"{i}.png", (i, 50, 90), noise_seed=i) for i in range(3)]
    shard = write_tar(tmp_path / "cut.tar", samples(pngs))
    with tarfile.open(shard) as tar:
        last = tar.getmember("00002.png")
    shard.write_bytes(shard.read_bytes()[:last.offset_data + 10])
    image_set = load_image_set(shard)
    assert len(image_set) == 2
    assert [(s.source.split("/")[-1], s.reason.split(" (")[0]) for s in image_set.skipped] == [
        ("cut.tar", "unreadable tar shard"), ("cut.tar:00000.json", "not an image file"),
        ("cut.tar:00001.json", "not an image file"), ("cut.tar:00002.png", "cannot read file")]
    compressed = tmp_path / "compressed.tar"
    compressed.write_bytes(gzip.compress(write_tar(tmp_path / "plain.tar", samples(pngs)).read_bytes()))
    with pytest.raises(InputError, match=r"no image files in the tar shards .*compressed\.tar \(.*unreadable tar "
                                         r"shard .*read as uncompressed tar files\)"):
        load_image_set(compressed)


def test_a_member_is_read_in_place_by_a_picklable_locator(shards, tmp_path):
    _, b_tar = shards
    item = load_image_set(b_tar).release_bytes().items[1]
    assert item.data is None
    assert pickle.loads(pickle.dumps(item.locator)).read() == item.read() == item.locator.read()
    assert item.open().size == (48, 40)
    b_tar.write_bytes(b_tar.read_bytes()[:item.locator.offset + 5])  # the shard cut inside the member
    with pytest.raises(InputError, match=r"b\.tar:00001\.jpg: cannot read file \(the shard ends \d+ byte"):
        item.read()


def test_the_hash_memo_spares_reading_unchanged_shards(shards, tmp_path, member_reads):
    _, b_tar = shards
    memo = FileHashMemo(tmp_path / "memo.sqlite")
    cold = load_image_set(b_tar, hashes=memo)
    assert len(member_reads) == 6
    member_reads.clear()
    warm = load_image_set(b_tar, hashes=memo)
    assert member_reads == [] and warm.keys == cold.keys
    assert load_image_set(sorted(b_tar.parent.glob("b/*.jpg")), hashes=memo).keys == cold.keys  # not mixed up
    write_tar(b_tar, {"00000.jpg": cold.items[1].read()})  # a changed shard is read again
    assert load_image_set(b_tar, hashes=memo).keys == cold.keys[1:2] and member_reads == ["00000.jpg"]


def test_a_cold_rank_reads_each_member_once_and_shares_the_cache_with_files(image_dirs, shards, tiny_clip_weights,
                                                                           member_reads):
    on_tars = visdiff.rank(["red"], *shards, scorer=tiny_clip_weights)
    assert on_tars.attrs["embeddings"]["encoded"] == 12 and len(member_reads) == 12  # hashed and decoded from one read
    on_files = visdiff.rank(["red"], *image_dirs, scorer=tiny_clip_weights)
    assert on_files.attrs["embeddings"]["cached"] == 12
    assert on_files["auroc"].tolist() == on_tars["auroc"].tolist()


@pytest.mark.parametrize(("command", "sizes_of"), [
    (["rank", "-H", "reddish images"], lambda out: (out["n_a"], out["n_b"])),
    (["compare"], lambda out: (out["config"]["n_a"], out["config"]["n_b"])),
    (["embed"], lambda out: tuple(embedded["images"] for embedded in out["sets"])),
])
def test_every_set_command_takes_tar_shards_offline(shards, command, sizes_of):
    pattern, b_tar = shards
    name, *options = command
    result = runner.invoke(app, [name, pattern, str(b_tar), *options, "--json", "-", "--quiet"])
    assert result.exit_code == 0, result.output
    assert sizes_of(json.loads(result.stdout)) == (6, 6)


def test_a_missing_shard_on_the_command_line_exits_2_naming_it(shards):
    pattern, b_tar = shards
    result = runner.invoke(app, ["rank", pattern.replace("001", "002"), str(b_tar), "-H", "red"])
    assert result.exit_code == 2 and "a-002.tar" in result.stderr and "Traceback" not in result.output
