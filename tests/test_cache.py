"""Embedding cache: content keys, hits and misses, damage, concurrency, CLI info/clear."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing

import numpy as np
import pytest

import visdiff
from tests.cli_helpers import run_cli
from visdiff.embeddings import cache as cache_module
from visdiff.cache_root import CacheRoot
from visdiff.embeddings.cache import EmbeddingCache, store_name
from visdiff.errors import InputError

from .conftest import make_image

DIM = 8


def key_of(i: int) -> str:
    return hashlib.sha256(f"image {i}".encode()).hexdigest()


def row_of(i: int) -> np.ndarray:
    """A deterministic embedding per key, so any process can check any row."""
    return np.linspace(-1, 1, DIM, dtype=np.float32) * (i + 1) / 100


def shard_files(cache: EmbeddingCache, suffix: str):
    return sorted(cache.path.glob(f"*{suffix}"))


# --- the store itself ------------------------------------------------------------------


def test_add_then_lookup_in_a_new_instance_round_trips_float16(tmp_path):
    EmbeddingCache(tmp_path, "scorer-x").add([key_of(i) for i in range(3)], np.stack([row_of(i) for i in range(3)]))
    cache = EmbeddingCache(tmp_path, "scorer-x")
    found, rows = cache.lookup([key_of(2), key_of(99), key_of(0)])
    assert found.tolist() == [True, False, True]
    assert rows.dtype == np.float16
    np.testing.assert_array_equal(rows, np.stack([row_of(2), row_of(0)]).astype(np.float16))


def test_all_misses_give_none(tmp_path):
    found, rows = EmbeddingCache(tmp_path, "empty").lookup([key_of(1)])
    assert found.tolist() == [False] and rows is None


def test_add_checks_lengths(tmp_path):
    with pytest.raises(ValueError, match="2 keys for 1 embeddings"):
        EmbeddingCache(tmp_path, "s").add([key_of(0), key_of(1)], np.zeros((1, DIM)))


def test_store_per_scorer_and_version(tmp_path, monkeypatch):
    assert EmbeddingCache(tmp_path, "a").path != EmbeddingCache(tmp_path, "b").path
    name = store_name("open_clip-ViT/B:32 weird id")
    assert "/" not in name and ":" not in name and " " not in name
    monkeypatch.setattr(cache_module, "CACHE_VERSION", cache_module.CACHE_VERSION + 1)
    assert store_name("open_clip-ViT/B:32 weird id") != name


def test_no_pickle_files_only_npy(tmp_path):
    cache = EmbeddingCache(tmp_path, "s")
    cache.add([key_of(0)], row_of(0)[None])
    files = sorted(p.name.split(".", 1)[1] for p in cache.path.iterdir())
    assert files == ["emb.npy", "keys.npy"]
    np.load(shard_files(cache, ".emb.npy")[0], allow_pickle=False)  # loads without pickle


@pytest.mark.parametrize(
    "damage",
    ["truncate-emb", "truncate-keys", "empty-keys", "garbage-keys", "wrong-dtype-emb", "nan-row"],
)
def test_damaged_shard_is_ignored_and_recomputed(tmp_path, caplog, damage):
    cache = EmbeddingCache(tmp_path, "s")
    cache.add([key_of(0), key_of(1)], np.stack([row_of(0), row_of(1)]))
    cache.add([key_of(2)], row_of(2)[None])  # an intact shard next to the damaged one
    emb_file = next(p for p in shard_files(cache, ".emb.npy") if np.load(p).shape[0] == 2)
    keys_file = emb_file.with_name(emb_file.name.replace(".emb.npy", ".keys.npy"))
    if damage == "truncate-emb":
        emb_file.write_bytes(emb_file.read_bytes()[:-10])
    elif damage == "truncate-keys":
        keys_file.write_bytes(keys_file.read_bytes()[:40])
    elif damage == "empty-keys":
        keys_file.write_bytes(b"")
    elif damage == "garbage-keys":
        keys_file.write_bytes(b"\x93NUMPY garbage" * 10)
    elif damage == "wrong-dtype-emb":
        np.save(emb_file, np.stack([row_of(0), row_of(1)]).astype(np.float64))
    elif damage == "nan-row":
        rows = np.load(emb_file)
        rows[1, 3] = np.nan
        np.save(emb_file, rows)
    with caplog.at_level(logging.WARNING, logger="visdiff"):
        found, rows = EmbeddingCache(tmp_path, "s").lookup([key_of(0), key_of(1), key_of(2)])
    if damage == "nan-row":  # only the bad row is dropped
        assert found.tolist() == [True, False, True]
    else:
        assert found.tolist() == [False, False, True]
        assert "damaged cache shard" in caplog.text
    np.testing.assert_array_equal(rows[-1], row_of(2).astype(np.float16))


def test_orphan_embedding_file_and_temp_files_are_ignored(tmp_path):
    """A writer killed after the embeddings but before the keys leaves an orphan .emb.npy;
    one killed mid-write leaves a .tmp file. Neither is ever served."""
    cache = EmbeddingCache(tmp_path, "s")
    cache.add([key_of(0)], row_of(0)[None])
    keys_file = shard_files(cache, ".keys.npy")[0]
    keys_file.unlink()
    (cache.path / ".123-abc.keys.npy.xyz.tmp").write_bytes(b"\x93NUMPY partial")
    found, rows = EmbeddingCache(tmp_path, "s").lookup([key_of(0)])
    assert found.tolist() == [False] and rows is None
    assert embedding_stores(tmp_path)[0].entries == 0


def test_shard_deleted_after_indexing_is_a_miss(tmp_path):
    cache = EmbeddingCache(tmp_path, "s")
    cache.add([key_of(0)], row_of(0)[None])
    reader = EmbeddingCache(tmp_path, "s")
    assert reader.lookup([key_of(0)])[0].tolist() == [True]
    for f in shard_files(cache, ".npy"):
        f.unlink()  # e.g. `visdiff cache clear` in another process
    assert reader.lookup([key_of(0)])[0].tolist() == [False]


def test_shards_merged_by_another_process_after_indexing_are_found_in_the_merged_shard(tmp_path, caplog):
    writer = EmbeddingCache(tmp_path, "s")
    for i in range(3):
        writer.add([key_of(i)], row_of(i)[None])
    reader = EmbeddingCache(tmp_path, "s")
    assert reader.lookup([key_of(0)])[0].all()  # indexed: three shards
    assert EmbeddingCache(tmp_path, "s").compact(target_rows=100) == (3, 1)  # e.g. `visdiff cache compact`
    with caplog.at_level(logging.WARNING):
        found, rows = reader.lookup([key_of(i) for i in range(3)])
    assert found.all()
    np.testing.assert_array_equal(rows, np.stack([row_of(i) for i in range(3)]).astype(np.float16))
    assert caplog.text == ""


def _writer(cache_dir: str, worker: int, rounds: int) -> None:
    cache = EmbeddingCache(cache_dir, "shared")
    for r in range(rounds):
        # Overlapping key ranges: several processes write the same keys at the same time.
        ids = list(range(worker * 5 + r, worker * 5 + r + 20))
        cache.add([key_of(i) for i in ids], np.stack([row_of(i) for i in ids]))


# Python 3.12 warns about fork() in a threaded process; the children only touch numpy and files.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_concurrent_writers_leave_a_consistent_store(tmp_path):
    processes, rounds = 4, 6
    # fork: the children only use numpy and files, and skip re-importing torch (seconds each).
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_writer, args=(str(tmp_path), w, rounds)) for w in range(processes)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0] * processes
    expected_ids = sorted({i for w in range(processes) for r in range(rounds) for i in range(w * 5 + r, w * 5 + r + 20)})
    found, rows = EmbeddingCache(tmp_path, "shared").lookup([key_of(i) for i in expected_ids])
    assert found.all()
    np.testing.assert_array_equal(rows, np.stack([row_of(i) for i in expected_ids]).astype(np.float16))
    info = embedding_stores(tmp_path)[0]
    assert info.shards == processes * rounds
    assert not list(tmp_path.rglob("*.tmp"))


# --- through visdiff.rank ------------------------------------------------------------


def embedding_stores(cache_dir) -> list:
    return [s for s in CacheRoot(cache_dir).info() if s.kind == "embeddings"]


def rank(image_dirs, scorer, **options):
    a, b = image_dirs
    return visdiff.rank(["a red image", "a blue image"], a, b, scorer=scorer, **options)


def test_second_run_encodes_nothing_and_scores_identically(image_dirs, tiny_clip_weights):
    cold = rank(image_dirs, tiny_clip_weights)
    warm = rank(image_dirs, tiny_clip_weights)
    assert cold.attrs["embeddings"]["encoded"] == 12 and cold.attrs["embeddings"]["cached"] == 0
    assert warm.attrs["embeddings"]["encoded"] == 0 and warm.attrs["embeddings"]["cached"] == 12
    assert cold.drop(columns="hypothesis").equals(warm.drop(columns="hypothesis"))


def test_cache_dir_argument_and_env_var(image_dirs, tiny_clip_weights, tmp_path, isolated_cache):
    rank(image_dirs, tiny_clip_weights, cache_dir=tmp_path / "explicit")
    assert embedding_stores(tmp_path / "explicit")[0].entries == 12
    assert embedding_stores(isolated_cache) == []  # the env-var default was not touched
    rank(image_dirs, tiny_clip_weights)
    assert embedding_stores(isolated_cache)[0].entries == 12


def test_no_cache_neither_reads_nor_writes(image_dirs, tiny_clip_weights, isolated_cache):
    rank(image_dirs, tiny_clip_weights)  # fills the cache
    table = rank(image_dirs, tiny_clip_weights, use_cache=False, cache_dir=isolated_cache / "other")
    assert table.attrs["embeddings"]["encoded"] == 12
    assert not (isolated_cache / "other").exists()


def test_keyed_by_content_not_path(image_dirs, tiny_clip_weights):
    a, b = image_dirs
    rank(image_dirs, tiny_clip_weights)
    (a / "img0.png").rename(a / "renamed.png")
    assert rank(image_dirs, tiny_clip_weights).attrs["embeddings"]["encoded"] == 0
    make_image(a / "img1.png", (10, 200, 10), noise_seed=42)  # edited in place
    after_edit = rank(image_dirs, tiny_clip_weights).attrs["embeddings"]
    assert after_edit["encoded"] == 1 and after_edit["cached"] == 11


def test_different_scorer_uses_a_different_store(image_dirs, tiny_clip_weights, tmp_path, isolated_cache):
    import open_clip
    import torch

    from .conftest import TINY_CLIP_ARCH

    torch.manual_seed(1)
    other_weights = tmp_path / "other.pt"
    torch.save(open_clip.create_model(TINY_CLIP_ARCH).state_dict(), other_weights)
    rank(image_dirs, tiny_clip_weights)
    other = rank(image_dirs, f"open_clip:{TINY_CLIP_ARCH}:{other_weights}")
    assert other.attrs["embeddings"]["encoded"] == 12
    image_stores = [s.store for s in embedding_stores(isolated_cache) if "_text-" not in s.store]
    assert len(image_stores) == 2


# --- CLI -----------------------------------------------------------------------------


def test_cli_cache_info_and_clear(image_dirs, tiny_clip_weights, isolated_cache):
    empty = run_cli("cache", "info")
    assert empty.exit_code == 0 and "nothing cached" in empty.stdout
    assert f"cache dir: {isolated_cache}" in empty.stdout
    rank(image_dirs, tiny_clip_weights)
    info = run_cli("cache", "info")
    assert info.exit_code == 0 and "12 embeddings in 1 shard(s)" in info.stdout
    cleared = run_cli("cache", "clear", "--yes")
    assert cleared.exit_code == 0 and "cleared" in cleared.stdout
    assert embedding_stores(isolated_cache) == []
    assert rank(image_dirs, tiny_clip_weights).attrs["embeddings"]["encoded"] == 12


def test_cli_cache_clear_asks_first(isolated_cache):
    EmbeddingCache(isolated_cache, "s").add([key_of(0)], row_of(0)[None])
    result = run_cli("cache", "clear", input="n\n")
    assert result.exit_code == 1
    assert embedding_stores(isolated_cache)[0].entries == 1


def test_clear_refuses_folders_that_are_not_caches(tmp_path):
    photos = tmp_path / "photos"
    make_image(photos / "holiday.jpg", (1, 2, 3))
    with pytest.raises(InputError, match="does not look like a visdiff cache"):
        CacheRoot(photos).clear()
    assert (photos / "holiday.jpg").exists()
    result = run_cli("cache", "clear", "--yes", "--cache-dir", str(photos))
    assert result.exit_code == 2 and "refusing to clear" in result.stderr
    assert "Traceback" not in result.output


def test_clear_of_missing_folder_frees_nothing(tmp_path):
    assert CacheRoot(tmp_path / "never-created").clear() == 0
