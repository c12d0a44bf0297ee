"""What each stage's backends can do, declared with their registration in the stage's registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from visdiff.captioners import CAPTIONERS
from visdiff.errors import InputError
from visdiff.options import RunOptions
from visdiff.proposers import PROPOSERS
from visdiff.scorers import SCORERS
from visdiff.llm.pool import RequestPool
from visdiff.stages import RunStages, caption_settings

REGISTRIES = {"scorer": SCORERS, "captioner": CAPTIONERS, "proposer": PROPOSERS}


def test_listing_backends_and_reading_capabilities_imports_no_model_library():
    code = (
        "import sys\n"
        "from visdiff.captioners import CAPTIONERS\n"
        "from visdiff.proposers import PROPOSERS\n"
        "from visdiff.scorers import SCORERS\n"
        "for registry in (SCORERS, CAPTIONERS, PROPOSERS):\n"
        "    for capability in registry.known_capabilities:\n"
        "        [registry.has(name, capability) for name in registry.names()]\n"
        "        registry.names_with(capability)\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'open_clip', 'pandas')]\n"
        "backends = [m for m in sys.modules if m.startswith(('visdiff.scorers.', 'visdiff.captioners.', "
        "'visdiff.proposers.'))]\n"
        "assert not heavy and not backends, (heavy, backends)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr


# What the stages rely on: the capabilities each backend declares.
@pytest.mark.parametrize(("stage", "capability", "backends"), [
    ("scorer", "pairwise", ["caption-llm", "vqa"]),
    ("scorer", "reads_captions", ["caption-llm"]),
    ("captioner", "prompted", ["blip2", "llava", "openai"]),
    ("proposer", "chat", ["llm", "vlm"]),
    ("proposer", "paired", ["llm"]),
    ("proposer", "reads_captions", ["llm"]),
])
def test_backends_declare_their_capabilities(stage, capability, backends):
    assert REGISTRIES[stage].names_with(capability) == backends


@pytest.mark.parametrize("stage", sorted(REGISTRIES))
def test_every_declared_factory_imports(stage):
    registry = REGISTRIES[stage]
    assert all(callable(registry.factory(name)) for name in registry.names())


def test_only_prompted_captioners_get_the_prompt_set():
    options = RunOptions(prompts="paper")
    pool = RequestPool()
    assert caption_settings(options, "blip2:some/model", llm_pool=pool)["prompts"] == "paper"
    assert "prompts" not in caption_settings(options, "offline", llm_pool=pool)


def test_only_chat_captioners_get_the_run_llm_pool():
    options, pool = RunOptions(), RequestPool()
    assert caption_settings(options, "openai:gpt-4o", llm_pool=pool)["llm_pool"] is pool
    assert "llm_pool" not in caption_settings(options, "blip2:some/model", llm_pool=pool)


@pytest.mark.parametrize(("given", "message"), [
    ({"pair_by": "key", "proposer": "vlm:m"}, r"cannot use pairs: give --llm MODEL \(the llm proposer\)"),
    ({"refine": 1, "proposer": "vocabulary"}, r"has none: give --llm MODEL \(an llm/vlm proposer\)"),
])
def test_proposer_options_name_the_proposers_that_can_use_them(tmp_path, given, message):
    with pytest.raises(InputError, match=message):
        RunStages(RunOptions(cache_dir=tmp_path, **given))
