"""Embedding at scale: reader/mapper/writer seams, checkpointed shards, kill and resume,
``visdiff embed`` and ``visdiff cache compact``."""

from __future__ import annotations

import hashlib
import io
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
from PIL import Image

import visdiff
from tests.cli_helpers import run_cli
from visdiff.cache_root import CacheRoot
from visdiff.embeddings import cache as cache_module
from visdiff.embeddings import jpeg as jpeg_module
from visdiff.embeddings import mapper as mapper_module
from visdiff.embeddings.cache import EmbeddingCache
from visdiff.embeddings.encode import embed_image_set
from visdiff.embeddings.jpeg import decode_jpegs, decodes_on_device, device_decodable
from visdiff.embeddings.mapper import ImageMapper
from visdiff.embeddings.reader import read_batches
from visdiff.embeddings.runner import run_seams
from visdiff.embeddings.settings import EmbedSettings
from visdiff.embeddings.transforms import split_transform
from visdiff.embeddings.writer import ShardWriter
from visdiff.errors import InputError
from visdiff.decoding import decode_image_bytes
from visdiff.sources import load_image_set
from visdiff.timing import Timings

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


# --- JPEGs decoded on the scorer's device (the CUDA path, run on the CPU: same API) -------


def jpeg_bytes(size=(48, 40), seed=0, exif_orientation: int | None = None) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    image = Image.fromarray(arr)
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def corrupt_jpeg() -> bytes:
    """A JPEG whose header parses and that ends in the end-of-image marker, with a bad marker
    in its scan data: both libjpeg (device path) and PIL refuse it."""
    data = jpeg_bytes()
    start_of_scan = data.index(b"\xff\xda")
    return data[:start_of_scan + 30] + b"\xff\x4a" + bytes(200) + b"\xff\xd9"


@pytest.fixture
def mixed_images(tmp_path) -> Path:
    """JPEGs of several sizes (one exactly the model's 32 px), PNGs, an EXIF-rotated JPEG, a
    corrupt JPEG and a cut one."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, size in enumerate([(48, 40), (40, 64), (32, 32), (100, 75)] * 3):
        (folder / f"{i:02d}.jpg").write_bytes(jpeg_bytes(size, seed=i))
    for i in range(3):
        make_image(folder / f"p{i}.png", (40 * i, 90, 200), noise_seed=i)
    (folder / "rotated.jpg").write_bytes(jpeg_bytes((48, 40), seed=99, exif_orientation=6))
    (folder / "corrupt.jpg").write_bytes(corrupt_jpeg())
    whole = jpeg_bytes((64, 48), seed=7)
    (folder / "cut.jpg").write_bytes(whole[:len(whole) // 2])
    return folder


def test_decode_setting_auto_means_the_device_on_cuda_only():
    assert decodes_on_device("auto", torch.device("cuda")) and not decodes_on_device("auto", torch.device("cpu"))
    assert decodes_on_device("device", torch.device("cpu")) and not decodes_on_device("workers", torch.device("cuda"))
    with pytest.raises(InputError, match="unknown decode setting 'gpu'; choose from auto, device, workers"):
        decodes_on_device("gpu", torch.device("cpu"))


def test_only_plain_complete_jpegs_are_left_for_the_device(mixed_images):
    assert device_decodable(jpeg_bytes())
    assert not device_decodable((mixed_images / "p0.png").read_bytes())
    assert not device_decodable(jpeg_bytes(exif_orientation=6))  # decode_jpeg rotates only on the CPU
    assert not device_decodable((mixed_images / "cut.jpg").read_bytes())  # PIL says why it is unusable
    cmyk = io.BytesIO()
    Image.new("CMYK", (8, 8)).save(cmyk, "JPEG")
    assert not device_decodable(cmyk.getvalue())


def test_device_pixels_are_within_one_level_of_the_scorers_own_transform(tiny_clip_weights):
    scorer = visdiff.create_scorer(tiny_clip_weights, device="cpu")
    split = split_transform(scorer.preprocess)
    images = [jpeg_bytes(size, seed=i) for i, size in enumerate([(48, 40), (40, 64), (32, 32), (100, 75), (48, 40)])]
    decoded, failures = decode_jpegs(images, [str(i) for i in range(len(images))], split, torch.device("cpu"))
    assert failures == {} and len(decoded) == len(images)
    reference = torch.stack([scorer.preprocess(Image.open(io.BytesIO(d)).convert("RGB")) for d in images])
    std = torch.tensor(split.std).view(1, 3, 1, 1)
    levels = ((split.normalize(torch.stack(decoded), torch.device("cpu")) - reference) * std * 255).abs()
    assert levels.max() < 1.001  # of 255: the antialiased bicubic resize rounds like PIL's
    assert levels[2].max() < 1e-3  # already the model's size: no resize, the same decoder


def test_device_decoding_embeds_a_mixed_set_like_the_workers_and_skips_bad_jpegs(mixed_images, tiny_clip_weights,
                                                                                   monkeypatch):
    scorer = visdiff.create_scorer(tiny_clip_weights, device="cpu")
    image_set = load_image_set(mixed_images)
    sent_to_device = []
    real = mapper_module.decode_jpegs

    def counting(encoded, sources, *args):
        sent_to_device.extend(Path(s).name for s in sources)
        return real(encoded, sources, *args)

    monkeypatch.setattr(mapper_module, "decode_jpegs", counting)
    results = {}
    for decode, workers in (("device", 2), ("device", 0), ("workers", 0)):
        timings = Timings()
        results[decode, workers] = embed_image_set(
            scorer, image_set, settings=EmbedSettings(batch_size=4, num_workers=workers, decode=decode),
            timings=timings) + (timings,)
    plain_jpegs = {f"{i:02d}.jpg" for i in range(12)}
    assert sorted(sent_to_device) == sorted(2 * [*plain_jpegs, "corrupt.jpg"])
    for (embeddings, usable, timings) in results.values():
        reasons = {Path(s.source).name: s.reason for s in usable.skipped}
        assert reasons.keys() == {"corrupt.jpg", "cut.jpg"}
        assert reasons["corrupt.jpg"] == "unreadable image (broken data stream when reading image file)"
        assert reasons["cut.jpg"].startswith("unreadable image (image file is truncated")
        assert len(usable) == len(embeddings) == 16
    (on_device, usable, timings), (_, _, _), (by_workers, usable_workers, worker_timings) = results.values()
    assert usable.keys == usable_workers.keys
    assert timings.seconds["embed_decode"] > 0 and "embed_decode" not in worker_timings.seconds
    rotated = usable.keys.index(next(it.key for it in usable.items if it.source.endswith("rotated.jpg")))
    pngs = [i for i, it in enumerate(usable.items) if it.source.endswith(".png")]
    torch.testing.assert_close(on_device[[rotated, *pngs]], by_workers[[rotated, *pngs]], rtol=0, atol=0)  # PIL both
    assert torch.nn.functional.cosine_similarity(on_device, by_workers).min() > 0.99


def test_a_jpeg_the_device_refuses_is_decoded_with_pil(tiny_clip_weights, monkeypatch):
    """nvjpeg does not take every valid JPEG; such a file is decoded on the CPU, not skipped."""
    scorer = visdiff.create_scorer(tiny_clip_weights, device="cpu")
    split = split_transform(scorer.preprocess)
    images = [jpeg_bytes(seed=i) for i in range(3)]
    real = jpeg_module._decode

    def refusing_the_second(encoded, device):
        if any(e.numpy().tobytes() == images[1] for e in encoded):
            raise RuntimeError("nvjpeg: unsupported")
        return real(encoded, device)

    monkeypatch.setattr(jpeg_module, "_decode", refusing_the_second)
    decoded, failures = decode_jpegs(images, ["a", "b", "c"], split, torch.device("cpu"))
    assert failures == {} and len(decoded) == 3
    by_pil = split.to_uint8(decode_image_bytes(images[1], min_size=split.draft_size))
    assert torch.equal(decoded[1], by_pil)


def test_rows_written_one_batch_late_while_the_next_is_prepared_are_the_same(mixed_images, tiny_clip_weights,
                                                                             tmp_path):
    """On CUDA the runner writes each batch's rows after launching the next one; forced on
    the CPU, the same keys and rows reach the same shards as when written at once."""
    scorer = visdiff.create_scorer(tiny_clip_weights, device="cpu")
    items = list(load_image_set(mixed_images).items)
    written = {}
    for overlaps in (False, True):
        mapper = ImageMapper(scorer, "device")
        mapper.overlaps = overlaps
        store = EmbeddingCache(tmp_path / str(overlaps), "s")
        writer = ShardWriter(store, shard_images=5)
        failures = run_seams(mapper, items, writer, batch_size=4, num_workers=0, show_progress=False)
        assert sorted(Path(items[i].source).name for i in failures) == ["corrupt.jpg", "cut.jpg"]
        written[overlaps] = (writer.rows, shard_sizes(store))
    (rows, shards), (late_rows, late_shards) = written.values()
    assert list(rows) == list(late_rows) and shards == late_shards == [1, 5, 5, 5]
    for key in rows:
        np.testing.assert_array_equal(rows[key], late_rows[key])


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
    result = run_cli("embed", str(a), str(b), "--scorer", tiny_clip_weights, "--shard-images", "4")
    assert result.exit_code == 0, result.output
    assert "12 encoded, 0 from the cache, 0 failed, 3 shard(s) written (read" in result.stdout
    bad = run_cli("embed", str(a), "--shard-images", "0")
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


def fragmented_text_store(tmp_path, shards: int) -> EmbeddingCache:
    """A scorer's text store holding ``shards`` shards of 2 rows (one per call that embedded
    new texts), written by an earlier process."""
    text_store = EmbeddingCache(tmp_path, "s").companion("text")
    for start in range(0, 2 * shards, 2):
        text_store.add(keys(start, start + 2), rows(start, start + 2))
    return text_store


def test_text_store_merges_its_small_shards_when_a_process_loads_more_than_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "COMPANION_MAX_SMALL_SHARDS", 4)
    fragmented_text_store(tmp_path, 4)
    reader = EmbeddingCache(tmp_path, "s").companion("text")
    assert reader.lookup(keys(0, 8))[0].all()
    assert shard_sizes(reader) == [2, 2, 2, 2]  # at the limit: left as it is
    reader.add(keys(8, 10), rows(8, 10))
    fresh = EmbeddingCache(tmp_path, "s").companion("text")
    found, stored = fresh.lookup(keys(0, 10))
    assert found.all()
    np.testing.assert_array_equal(stored, rows(0, 10))
    assert shard_sizes(fresh) == [10]
    images = EmbeddingCache(tmp_path, "s")  # an image store merges only when asked (``visdiff cache compact``)
    for start in range(0, 12, 2):
        images.add(keys(start, start + 2), rows(start, start + 2))
    EmbeddingCache(tmp_path, "s").lookup(keys(0, 1))
    assert len(shard_sizes(images)) == 6


def test_text_store_lookup_goes_on_when_its_shards_cannot_be_merged(tmp_path, monkeypatch, caplog):
    from filelock import FileLock

    monkeypatch.setattr(cache_module, "COMPANION_MAX_SMALL_SHARDS", 2)
    text_store = fragmented_text_store(tmp_path, 3)
    with FileLock(text_store.path / ".compact.lock"):  # another process is merging them
        found, stored = EmbeddingCache(tmp_path, "s").companion("text").lookup(keys(0, 6))
    assert found.all()
    np.testing.assert_array_equal(stored, rows(0, 6))
    assert len(shard_sizes(text_store)) == 3

    def read_only(*args):
        raise PermissionError(13, "Permission denied", str(text_store.path))

    monkeypatch.setattr(EmbeddingCache, "_write_shard", read_only)
    with caplog.at_level(logging.INFO, logger="visdiff.embeddings.cache"):
        found, _ = EmbeddingCache(tmp_path, "s").companion("text").lookup(keys(0, 6))
    assert found.all()
    assert "could not merge the 3 small shards" in caplog.text and "Permission denied" in caplog.text


def test_shards_deleted_while_a_store_is_listed_are_skipped_without_a_warning(tmp_path, monkeypatch, caplog):
    store = EmbeddingCache(tmp_path, "s")
    store.add(keys(0, 2), rows(0, 2))
    store.add(keys(2, 4), rows(2, 4))
    listed = store._shards()
    for keys_file in listed[:1]:  # a compaction in another process deletes the first shard after the listing
        keys_file.unlink()
        keys_file.with_name(keys_file.name.replace(".keys.npy", ".emb.npy")).unlink()
    monkeypatch.setattr(EmbeddingCache, "_shards", lambda self: listed)
    with caplog.at_level(logging.WARNING):
        found, _ = EmbeddingCache(tmp_path, "s").lookup(keys(0, 4))
    assert found.sum() == 2
    assert caplog.text == ""


def test_cli_cache_compact(image_dirs, tiny_clip_weights, isolated_cache):
    a, b = image_dirs
    visdiff.embed([a, b], scorer=tiny_clip_weights, shard_images=2)
    result = run_cli("cache", "compact")
    assert result.exit_code == 0 and ": 6 -> 1 shard(s)" in result.stdout
    again = visdiff.embed([a, b], scorer=tiny_clip_weights)
    assert again["embeddings"]["cached"] == 12
    empty = run_cli("cache", "compact", "--cache-dir", str(isolated_cache / "none"))
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
    result = run_cli("rank", str(a), str(b), "-H", "red", *args)
    assert result.exit_code == 2 and message in result.output
