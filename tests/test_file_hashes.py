"""File-hash memo: unchanged files are not read again, changed ones are."""

from __future__ import annotations

import hashlib
import logging
import os

import pytest

import visdiff
from tests.cli_helpers import run_cli
from visdiff import image_sets
from visdiff.cache_root import CacheRoot
from visdiff.file_hashes import FileHashMemo
from visdiff.sources import load_image_set

from .conftest import make_image


@pytest.fixture
def reads(monkeypatch) -> list:
    """Every file read by the image listing, in order."""
    seen = []
    original = image_sets.read_bytes

    def counting(path):
        seen.append(path)
        return original(path)

    monkeypatch.setattr(image_sets, "read_bytes", counting)
    return seen


def test_unchanged_files_are_not_read_again_and_keep_their_keys(image_dirs, tmp_path, reads):
    a, _ = image_dirs
    memo = FileHashMemo(tmp_path / "memo.sqlite")
    cold = load_image_set(a, hashes=memo)
    assert len(reads) == 6
    reads.clear()
    warm = load_image_set(a, hashes=memo)
    assert reads == [] and warm.keys == cold.keys == load_image_set(a).keys


def test_a_changed_file_is_hashed_again_even_with_its_old_size_and_mtime(image_dirs, tmp_path, reads):
    a, _ = image_dirs
    memo = FileHashMemo(tmp_path / "memo.sqlite")
    before = load_image_set(a, hashes=memo)
    edited = a / "img2.png"
    old = edited.stat()
    make_image(tmp_path / "other.png", (1, 2, 3), noise_seed=99)
    data = (tmp_path / "other.png").read_bytes()
    edited.write_bytes(data[: old.st_size].ljust(old.st_size, b"\0"))
    os.utime(edited, ns=(old.st_atime_ns, old.st_mtime_ns))  # same size, same mtime: only ctime tells
    reads.clear()
    after = load_image_set(a, hashes=memo)
    assert reads == [edited]
    changed = [i for i, (x, y) in enumerate(zip(before.keys, after.keys)) if x != y]
    assert [after.items[i].path for i in changed] == [edited]
    assert after.items[changed[0]].key == hashlib.sha256(edited.read_bytes()).hexdigest()


def test_unreadable_files_are_not_remembered(tmp_path, reads):
    folder = tmp_path / "images"
    make_image(folder / "ok.png", (9, 9, 9))
    (folder / "bad.png").write_bytes(b"not an image")
    memo = FileHashMemo(tmp_path / "memo.sqlite")
    for _ in range(2):
        image_set = load_image_set(folder, hashes=memo)
        assert [s.reason for s in image_set.skipped] == ["not an image file"]
    assert [p.name for p in reads] == ["bad.png", "ok.png", "bad.png"]


def test_a_damaged_memo_is_a_warning_and_every_file_is_hashed(image_dirs, tmp_path, caplog):
    a, _ = image_dirs
    memo_file = tmp_path / "memo.sqlite"
    memo_file.write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING):
        image_set = load_image_set(a, hashes=FileHashMemo(memo_file))
    assert image_set.keys == load_image_set(a).keys
    assert "cannot read the file-hash memo" in caplog.text


def test_a_memo_that_cannot_be_written_is_a_warning(image_dirs, tmp_path, caplog):
    a, _ = image_dirs
    (tmp_path / "file").write_text("a file where the memo's folder would go")
    with caplog.at_level(logging.WARNING):
        image_set = load_image_set(a, hashes=FileHashMemo(tmp_path / "file" / "memo.sqlite"))
    assert image_set.keys == load_image_set(a).keys
    assert "cannot read the file-hash memo" in caplog.text and "cannot update" in caplog.text


def test_rank_remembers_hashes_in_the_cache_and_not_with_no_cache(image_dirs, tiny_clip_weights, isolated_cache,
                                                                   tmp_path, reads):
    a, b = image_dirs
    visdiff.rank(["red"], a, b, scorer=tiny_clip_weights)
    reads.clear()
    warm = visdiff.rank(["red"], a, b, scorer=tiny_clip_weights)
    assert reads == [] and warm.attrs["embeddings"]["encoded"] == 0
    assert (isolated_cache / "hashes" / "files.sqlite").is_file()
    assert CacheRoot(None).file_hashes() is None
    visdiff.rank(["red"], a, b, scorer=tiny_clip_weights, use_cache=False, cache_dir=tmp_path / "unused")
    assert not (tmp_path / "unused").exists()


def test_cli_rank_reads_no_unchanged_file_on_a_warm_run(image_dirs, tiny_clip_weights, reads):
    a, b = image_dirs
    command = ["rank", str(a), str(b), "-H", "red", "--scorer", tiny_clip_weights, "--json", "-"]
    assert run_cli(*command).exit_code == 0
    reads.clear()
    warm = run_cli(*command)
    assert warm.exit_code == 0 and reads == []


# --- one read per file: the bytes hashed are the bytes decoded ----------------------------


def test_a_cold_rank_reads_each_file_once(image_dirs, tiny_clip_weights, reads):
    a, b = image_dirs
    table = visdiff.rank(["red"], a, b, scorer=tiny_clip_weights)
    assert table.attrs["embeddings"]["encoded"] == 12
    assert sorted(reads) == sorted([*a.iterdir(), *b.iterdir()])  # hashed and decoded from one read


def test_files_beyond_the_held_bytes_are_read_again_to_decode_with_the_same_result(image_dirs, tiny_clip_weights,
                                                                                    reads, monkeypatch, tmp_path):
    a, b = image_dirs
    monkeypatch.setattr(image_sets, "HELD_BYTES_PER_SET", 0)
    bounded = visdiff.rank(["red"], a, b, scorer=tiny_clip_weights, cache_dir=tmp_path / "bounded")
    assert len(reads) == 2 * 12  # every file hashed, then read again to decode
    monkeypatch.setattr(image_sets, "HELD_BYTES_PER_SET", 2**30)
    unbounded = visdiff.rank(["red"], a, b, scorer=tiny_clip_weights, cache_dir=tmp_path / "unbounded")
    assert bounded.equals(unbounded)


def test_the_decoded_pixels_are_those_of_the_hashed_bytes(tmp_path):
    path = make_image(tmp_path / "x.png", (200, 0, 0))
    image_set = load_image_set([path])
    make_image(path, (0, 0, 200))  # changed after hashing, before decoding
    assert image_set.items[0].open().getpixel((0, 0)) == (200, 0, 0)
    assert image_set.items[0].key == hashlib.sha256(image_set.items[0].data).hexdigest()


def test_embedded_sets_hold_no_file_bytes(image_dirs, tiny_clip_weights):
    a, b = image_dirs
    comparison = visdiff.Comparison(a, b, scorer=tiny_clip_weights, proposer="vocabulary")
    loaded = load_image_set(a)
    assert all(it.data is not None for it in loaded.items)
    assert all(it.data is None for it in [*comparison.set_a.items, *comparison.set_b.items])
