"""The ray engine on a local Ray (``ray.init(num_cpus=2)``): the same cache rows as the local
engine, and a killed Ray job resumes from the shards it committed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import ray

import visdiff
from tests.cli_helpers import run_cli
from visdiff.embeddings.cache import EmbeddingCache
from visdiff.sources import load_image_set

from .conftest import TINY_CLIP_ARCH, make_image
from .test_webdataset import write_tar


def tiny_config(weights_spec: str) -> str:
    return str(Path(weights_spec.rsplit(":", 1)[1]).parent / f"{TINY_CLIP_ARCH}.json")


@pytest.fixture(scope="module")
def local_ray(tiny_clip_weights):
    """A local Ray of 2 CPUs whose workers know the tiny test architecture."""
    config = tiny_config(tiny_clip_weights)

    def register_tiny_arch():
        import open_clip

        open_clip.add_model_config(config)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"worker_process_setup_hook": register_tiny_arch})
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    for i in range(24):
        make_image(folder / f"{i:02d}.png", (10 * i, 200 - 5 * i, 90), noise_seed=i)
    (folder / "broken.png").write_bytes((folder / "00.png").read_bytes()[:80])
    return folder


def store_rows(cache_dir: Path, cache_id: str, keys: list[str]) -> np.ndarray:
    found, rows = EmbeddingCache(cache_dir, cache_id).lookup(keys)
    assert found.all()
    return rows


def test_ray_engine_writes_the_same_rows_as_the_local_engine(local_ray, images, tiny_clip_weights, tmp_path):
    on_ray = visdiff.embed([images], scorer=tiny_clip_weights, engine="ray", shard_images=5,
                           cache_dir=tmp_path / "ray")
    local = visdiff.embed([images], scorer=tiny_clip_weights, cache_dir=tmp_path / "local")
    assert on_ray["sets"] == local["sets"] and on_ray["sets"][0]["images"] == 24
    assert on_ray["sets"][0]["skipped"][0]["source"].endswith("broken.png")
    assert on_ray["embeddings"]["encoded"] == 24 and on_ray["embeddings"]["shards"] == 5  # 5+5+5+5+4, broken: none
    assert on_ray["timings"]["embed_map"] > 0
    keys = load_image_set(images).keys
    keys.remove(next(k for k, it in zip(keys, load_image_set(images).items) if it.path.name == "broken.png"))
    cache_id = visdiff.create_scorer(tiny_clip_weights).cache_id
    np.testing.assert_array_equal(store_rows(tmp_path / "ray", cache_id, keys),
                                  store_rows(tmp_path / "local", cache_id, keys))
    warm = visdiff.embed([images], scorer=tiny_clip_weights, engine="ray", cache_dir=tmp_path / "ray")
    assert warm["embeddings"]["encoded"] == 0 and warm["embeddings"]["cached"] == 24


def test_ray_actors_read_members_of_tar_shards(local_ray, images, tiny_clip_weights, tmp_path):
    """Each actor reads the images from the shards (the driver sends only the members'
    locators): the same rows as the local engine, a member that cannot be decoded reported."""
    files = sorted(images.iterdir())
    for shard, part in enumerate((files[:13], files[13:])):
        write_tar(tmp_path / f"shard-{shard}.tar", {f.name: f.read_bytes() for f in part})
    pattern = tmp_path / "shard-{0..1}.tar"
    on_ray = visdiff.embed([pattern], scorer=tiny_clip_weights, engine="ray", shard_images=5,
                           cache_dir=tmp_path / "ray")
    local = visdiff.embed([pattern], scorer=tiny_clip_weights, cache_dir=tmp_path / "local")
    assert on_ray["sets"] == local["sets"] and on_ray["embeddings"]["encoded"] == 24
    assert on_ray["sets"][0]["images"] == 24
    assert on_ray["sets"][0]["skipped"][0]["source"].endswith("shard-1.tar:broken.png")
    keys = [item.key for item in load_image_set(pattern) if not item.source.endswith("broken.png")]
    cache_id = visdiff.create_scorer(tiny_clip_weights).cache_id
    np.testing.assert_array_equal(store_rows(tmp_path / "ray", cache_id, keys),
                                  store_rows(tmp_path / "local", cache_id, keys))


def test_an_unreachable_ray_address_fails_at_once_naming_it(images, tmp_path):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    result = run_cli("embed", images, "--engine", "ray", "--address", address, "--cache-dir", tmp_path / "c", "-q")
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: no Ray cluster at --address '{address}': Connection refused (within 5 s)\n"


def test_ray_engine_needs_the_cache(local_ray, images, tiny_clip_weights):
    with pytest.raises(visdiff.InputError, match="cannot run with --no-cache"):
        visdiff.embed([images], scorer=tiny_clip_weights, engine="ray", use_cache=False)


def test_a_killed_ray_job_resumes_from_its_shards(local_ray, tiny_clip_weights, tmp_path):
    """SIGKILL a ``visdiff embed --engine ray`` driver (a real subprocess on the test's Ray)
    once shards are committed; the rerun encodes only the images no committed shard holds."""
    folder = tmp_path / "images"
    for i in range(60):
        make_image(folder / f"{i:02d}.png", (i, 4 * i, 100), noise_seed=i)
    cache_dir, passes = tmp_path / "cache", tmp_path / "passes.txt"
    env = {**os.environ, "VISDIFF_CACHE_DIR": str(cache_dir), "VISDIFF_TEST_PASSES": str(passes),
           "VISDIFF_TEST_CLIP_CONFIG": tiny_config(tiny_clip_weights), "VISDIFF_TEST_RAY_ADDRESS": local_ray,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(Path(__file__).with_name("counting_scorer_cli.py")), "embed", str(folder),
               "--scorer", f"counting:{tiny_clip_weights}", "--engine", "ray", "--shard-images", "6",
               "--batch-size", "3", "--quiet", "--json", "-"]
    store = EmbeddingCache(cache_dir, visdiff.create_scorer(tiny_clip_weights).cache_id)

    run = subprocess.Popen(command, env={**env, "VISDIFF_TEST_PASS_DELAY": "0.3"}, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while len(list(store.path.glob("*.keys.npy"))) < 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    committed = sum(np.load(f).shape[0] for f in store.path.glob("*.keys.npy"))
    assert 12 <= committed < 60

    passes.unlink(missing_ok=True)
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr == ""  # --quiet: nothing from Ray's Python logs, Ray Data's progress or its C++ core
    counts = json.loads(rerun.stdout)["embeddings"]
    assert counts["cached"] + counts["encoded"] == 60
    # Shards the killed job was still finishing may land after we counted: never more work.
    assert counts["cached"] >= committed
    assert sum(int(n) for n in passes.read_text().split()) == counts["encoded"]
    assert store_rows(cache_dir, store.cache_id, load_image_set(folder).keys).shape == (60, 32)
