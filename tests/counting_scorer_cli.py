"""``visdiff`` CLI with one extra scorer backend, for tests that run the CLI in a subprocess.

``counting:SPEC`` wraps the scorer ``SPEC`` (same ``cache_id``, so it shares its cache) and,
per image forward pass, appends the batch size to the file ``$VISDIFF_TEST_PASSES`` and then
sleeps ``$VISDIFF_TEST_PASS_DELAY`` seconds, so a test can kill the process mid-run and count
the images a rerun encodes. ``$VISDIFF_TEST_CLIP_CONFIG`` registers a tiny open_clip config.
With ``$VISDIFF_TEST_RAY_ADDRESS`` the run joins that Ray cluster, whose workers for this job
get the same backend, config and variables (for ``--engine ray``).

    python tests/counting_scorer_cli.py embed DIR --scorer counting:open_clip:ARCH:WEIGHTS
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from visdiff.entry import main
from visdiff.scorers import create_scorer


class CountingScorer:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.spec = f"counting:{inner.spec}"
        self.cache_id = inner.cache_id
        self.device = inner.device
        self.passes = Path(os.environ["VISDIFF_TEST_PASSES"])
        self.delay = float(os.environ.get("VISDIFF_TEST_PASS_DELAY", "0"))

    @property
    def preprocess(self):
        return self.inner.preprocess

    def encode_images(self, pixels):
        embeddings = self.inner.encode_images(pixels)
        with open(self.passes, "a") as f:
            f.write(f"{len(pixels)}\n")
        time.sleep(self.delay)
        return embeddings

    def encode_texts(self, texts):
        return self.inner.encode_texts(texts)

    def score(self, image_embeddings, text_embeddings):
        return self.inner.score(image_embeddings, text_embeddings)


def _create(model: str, **options) -> CountingScorer:
    return CountingScorer(create_scorer(model, **options))


TEST_VARIABLES = ("VISDIFF_TEST_PASSES", "VISDIFF_TEST_PASS_DELAY", "VISDIFF_TEST_CLIP_CONFIG")


def set_up_process() -> None:
    """Register the tiny config and (in Ray workers, where this module is __main__ of no one)
    the counting backend."""
    import open_clip

    # Imported here, not taken from this module's globals: Ray copies a registry object
    # pickled with this function, and the copy is not the worker's registry.
    from visdiff.scorers import SCORERS as registry

    open_clip.add_model_config(Path(os.environ["VISDIFF_TEST_CLIP_CONFIG"]))
    if "counting" not in registry.names():
        registry.register("counting")(_create)


if __name__ == "__main__":
    set_up_process()
    if os.environ.get("VISDIFF_TEST_RAY_ADDRESS"):
        import ray

        import logging

        # As the ray engine's own ray.init under --quiet: Ray's logs at errors only.
        ray.init(address=os.environ["VISDIFF_TEST_RAY_ADDRESS"], log_to_driver=False, logging_level=logging.ERROR,
                 runtime_env={
            "worker_process_setup_hook": set_up_process,
                     "env_vars": {name: os.environ[name] for name in TEST_VARIABLES if name in os.environ}})
    main()
