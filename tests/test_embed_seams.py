"""Embedding at scale: reader/mapper/writer seams, checkpointed shards, kill and resume,
``visdiff embed`` and ``visdiff cache compact``."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import visdiff
from visdiff.cache_root import CacheRoot
from visdiff.cli import app
from visdiff.embeddings.cache import EmbeddingCache
from visdiff.embeddings.reader import read_batches
from visdiff.embeddings.writer import ShardWriter
from visdiff.errors import InputError
from visdiff.image_sets import load_image_set

from .conftest import TINY_CLIP_ARCH, make_image

DIM = 4


def keys(start: int, stop: int) -> list[str]:
    return [hashlib.sha256(f"image {i}".encode()).hexdigest() for i in range(start, stop)]


def rows(start: int, stop: int) -> np.ndarray:
    return np.arange(start * DIM, stop * DIM, dtype=np.float16).reshape(-1, DIM)


def shard_sizes(store: EmbeddingCache) -> list[int]:
    return sorted(np.load(f).shape[0] for f in store.path.glob("*.keys.npy"))


# --- writer ----------------------------------------------------------------------------


def test_writer_commits_a_shard_every_n_images_exactly(tmp_path):
    store = EmbeddingCache(tmp_path, "s")
    writer = ShardWriter(store, shard_images=5, shard_seconds=1e9)
    for start in range(0, 12, 3):  # batches of 3 do not line up with shards of 5
        writer.add(keys(start, start + 3), rows(start, start + 3))
    assert shard_sizes(store) == [5, 5] and writer.buffered == 2
    writer.close()
    assert shard_sizes(store) == [2, 5, 5] and writer.shards == 3
    found, stored = EmbeddingCache(tmp_path, "s").lookup(keys(0, 12))
    assert found.all()
    np.testing.assert_array_equal(stored, rows(0, 12))


def test_writer_commits_what_it_holds_after_shard_seconds(tmp_path):
    now = [0.0]
    store = EmbeddingCache(tmp_path, "s")
    writer = ShardWriter(store, shard_images=100, shard_seconds=10.0, clock=lambda: now[0])
    writer.add(keys(0, 2), rows(0, 2))
    now[0] = 9.0
    writer.add(keys(2, 3), rows(2, 3))
    assert shard_sizes(store) == []
    now[0] = 10.5
    writer.add(keys(3, 4), rows(3, 4))
    assert shard_sizes(store) == [4] and writer.buffered == 0


def test_writer_without_a_store_keeps_rows_and_writes_nothing(tmp_path):
    writer = ShardWriter(None, shard_images=1)
    writer.add(keys(0, 3), rows(0, 3))
    writer.close()
    assert writer.shards == 0 and list(writer.rows) == keys(0, 3)
    assert not list(tmp_path.iterdir())


def test_a_store_that_wrote_shards_finds_their_rows_in_the_same_process(tmp_path):
    store = EmbeddingCache(tmp_path, "s")
    assert store.lookup(keys(0, 1))[0].tolist() == [False]  # index loaded before the writes
    writer = ShardWriter(store, shard_images=2)
    writer.add(keys(0, 5), rows(0, 5))
    writer.close()
    found, stored = store.lookup(keys(0, 5))
    assert found.all()
    np.testing.assert_array_equal(stored, rows(0, 5))


# --- reader ----------------------------------------------------------------------------


def test_reader_gives_batches_of_exactly_batch_size_and_reports_failures(tmp_path):
    for i in range(7):
        make_image(tmp_path / f"{i}.png", (i * 30, 0, 0))
    (tmp_path / "7.png").write_bytes(b"not an image")
    image_set = load_image_set(sorted(tmp_path.glob("*.png")))  # the bad file is skipped at listing...
    items = list(image_set.items)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes((tmp_path / "0.png").read_bytes()[:60])  # ...a cut one only at decoding
    items.insert(3, type(items[0])(key="cut", source=str(truncated), path=truncated))
    batches = list(read_batches(items, lambda im: torch.zeros(3, 2, 2), None, batch_size=3, num_workers=0))
    assert [len(b.positions) for b in batches] == [3, 3, 1]
    assert [i for b in batches for i in b.failures for i in [i[0]]] == [3]
    assert sorted(i for b in batches for i in b.positions) == [0, 1, 2, 4, 5, 6, 7]


# --- seams through the public API --------------------------------------------------------


def test_each_part_is_timed_and_logged(image_dirs, tiny_clip_weights, caplog):
    a, b = image_dirs
    with caplog.at_level(logging.INFO, logger="visdiff"):
        summary = visdiff.embed([a, b], scorer=tiny_clip_weights, shard_images=5)
    assert summary["embeddings"]["encoded"] == 12 and summary["embeddings"]["shards"] == 3
    assert all(summary["timings"][seam] > 0 for seam in ("embed_read", "embed_map", "embed_write"))
    assert "embedded 12 images (0 failed): read" in caplog.text and "(3 shards)" in caplog.text
    assert [s["images"] for s in summary["sets"]] == [6, 6]
    again = visdiff.embed([a], scorer=tiny_clip_weights)
    assert again["embeddings"] == {**again["embeddings"], "encoded": 0, "cached": 6, "shards": 0}


def test_compare_results_time_each_part(image_dirs, tiny_clip_weights):
    a, b = image_dirs
    result = visdiff.compare(a, b, scorer=tiny_clip_weights, proposer="vocabulary")
    assert {"embed_read", "embed_map", "embed_write"} <= set(result.timings)


@pytest.mark.parametrize("field, value", [("shard_images", 0), ("shard_seconds", 0), ("shard_seconds", "5")])
def test_shard_settings_are_checked(field, value):
    with pytest.raises(InputError, match=field):
        visdiff.RunOptions(**{field: value})


def test_cli_embed_reports_counts_and_rejects_bad_shard_size(image_dirs, tiny_clip_weights):
    a, b = image_dirs
    result = CliRunner().invoke(app, ["embed", str(a), str(b), "--scorer", tiny_clip_weights, "--shard-images", "4"])
    assert result.exit_code == 0, result.output
    assert "12 encoded, 0 from the cache, 0 failed, 3 shard(s) written (read" in result.stdout
    bad = CliRunner().invoke(app, ["embed", str(a), "--shard-images", "0"])
    assert bad.exit_code == 2


# --- kill and resume ----------------------------------------------------------------------


def test_a_killed_run_resumes_and_re_encodes_less_than_one_shard(tmp_path, tiny_clip_weights):
    """SIGKILL ``visdiff embed`` (a real subprocess) once it has committed shards; the
    rerun encodes only what no committed shard holds, and the cache ends up complete."""
    images = tmp_path / "images"
    for i in range(96):
        make_image(images / f"{i:03d}.png", (i, 255 - i, 128), noise_seed=i)
    cache_dir, passes = tmp_path / "cache", tmp_path / "passes.txt"
    shard_images, batch_size = 8, 4
    env = {**os.environ, "VISDIFF_CACHE_DIR": str(cache_dir), "VISDIFF_TEST_PASSES": str(passes),
           "VISDIFF_TEST_CLIP_CONFIG": str(Path(tiny_clip_weights.rsplit(":", 1)[1]).parent / f"{TINY_CLIP_ARCH}.json"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(Path(__file__).with_name("counting_scorer_cli.py")), "embed", str(images),
               "--scorer", f"counting:{tiny_clip_weights}", "--shard-images", str(shard_images),
               "--batch-size", str(batch_size), "--quiet"]
    store = CacheRoot(cache_dir).embeddings(visdiff.create_scorer(tiny_clip_weights).cache_id)

    run = subprocess.Popen(command, env={**env, "VISDIFF_TEST_PASS_DELAY": "0.15"})
    deadline = time.monotonic() + 120
    while len(list(store.path.glob("*.keys.npy"))) < 3 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    encoded_before_kill = sum(int(n) for n in passes.read_text().split())
    committed = sum(shard_sizes(store))
    assert 3 * shard_images <= committed < 96
    assert encoded_before_kill - committed < shard_images  # lost: less than one shard

    passes.unlink()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert sum(int(n) for n in passes.read_text().split()) == 96 - committed
    assert f"{96 - committed} encoded, {committed} from the cache" in rerun.stdout
    fresh = visdiff.embed([images], scorer=tiny_clip_weights, cache_dir=tmp_path / "fresh")
    assert fresh["embeddings"]["encoded"] == 96
    keys_96 = load_image_set(images).keys
    found, resumed = EmbeddingCache(cache_dir, store.cache_id).lookup(keys_96)
    _, clean = EmbeddingCache(tmp_path / "fresh", store.cache_id).lookup(keys_96)
    assert found.all()
    np.testing.assert_array_equal(resumed, clean)


# --- compaction ---------------------------------------------------------------------------


def test_compact_merges_small_shards_keeps_every_row_once_and_leaves_big_ones(tmp_path):
    store = EmbeddingCache(tmp_path, "s")
    for start in range(0, 20, 2):
        store.add(keys(start, start + 2), rows(start, start + 2))
    store.add(keys(20, 40), rows(20, 40))  # already big
    assert store.lookup(keys(0, 1))[0].all()  # index loaded before compaction
    before, after = store.compact(target_rows=8)
    assert (before, after) == (11, 4)
    assert shard_sizes(store) == [4, 8, 8, 20]
    for reader in (store, EmbeddingCache(tmp_path, "s")):
        found, stored = reader.lookup(keys(0, 40))
        assert found.all()
        np.testing.assert_array_equal(stored, rows(0, 40))
    assert store.compact(target_rows=8) == (4, 4)


def test_compact_keeps_a_key_stored_twice_once(tmp_path):
    store = EmbeddingCache(tmp_path, "s")
    store.add(keys(0, 2), rows(0, 2))
    store.add(keys(0, 3), rows(0, 3))
    assert store.compact(target_rows=100) == (2, 1)
    assert shard_sizes(store) == [3]
    np.testing.assert_array_equal(store.lookup(keys(0, 3))[1], rows(0, 3))


def test_cli_cache_compact(image_dirs, tiny_clip_weights, isolated_cache):
    a, b = image_dirs
    visdiff.embed([a, b], scorer=tiny_clip_weights, shard_images=2)
    result = CliRunner().invoke(app, ["cache", "compact"])
    assert result.exit_code == 0 and ": 6 -> 1 shard(s)" in result.stdout
    again = visdiff.embed([a, b], scorer=tiny_clip_weights)
    assert again["embeddings"]["cached"] == 12
    empty = CliRunner().invoke(app, ["cache", "compact", "--cache-dir", str(isolated_cache / "none")])
    assert empty.exit_code == 0 and "nothing cached" in empty.stdout


# --- engines --------------------------------------------------------------------------------


def test_without_engine_ray_nothing_imports_ray():
    code = ("import sys, visdiff; from visdiff.stages import RunStages; from visdiff.engines import ENGINES; "
            "ENGINES.names(); RunStages(visdiff.RunOptions()).scoring; assert 'ray' not in sys.modules, 'ray imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("args, message", [
    (["--engine", "spark"], "unknown engine backend 'spark'"),
    (["--address", "ray://head:10001"], "the local engine takes no address"),
])
def test_cli_rejects_an_unknown_engine_and_a_stray_address(image_dirs, args, message):
    a, b = image_dirs
    result = CliRunner().invoke(app, ["rank", str(a), str(b), "-H", "red", *args])
    assert result.exit_code == 2 and message in result.output
