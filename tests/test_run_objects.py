"""A command builds its run objects once: one RunStages, one scoring stage, one proposer and
one engine per `visdiff compare`, `rank` or `propose` (the CLI checks its specs on the same
stages that then run)."""

from __future__ import annotations

from collections import Counter

import pytest

import visdiff
from tests.cli_helpers import run_cli
from visdiff import stages as stages_module
from visdiff.embeddings import scoring as scoring_module
from visdiff.errors import InputError


@pytest.fixture
def built(monkeypatch) -> Counter:
    """How many times each run object was built while the test ran."""
    counts: Counter = Counter()

    def counting(name, function):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(stages_module.RunStages, "__init__", counting("RunStages", stages_module.RunStages.__init__))
    monkeypatch.setattr(stages_module, "create_scoring", counting("Scoring", scoring_module.create_scoring))
    monkeypatch.setattr(stages_module, "build_proposer", counting("proposer", stages_module.build_proposer))
    monkeypatch.setattr(stages_module.ENGINES, "create", counting("engine", stages_module.ENGINES.create))  # one registry
    return counts


@pytest.mark.parametrize("command", [["compare", "--both-directions"], ["propose", "--both-directions"],
                                     ["rank", "-H", "red things"]])
def test_one_command_builds_each_run_object_once(image_dirs, built, command):
    a, b = image_dirs
    name, *extra = command
    result = run_cli(name, str(a), str(b), *extra, "-q")
    assert result.exit_code == 0, result.output
    proposes = name != "rank"
    assert built == Counter({"RunStages": 1, "Scoring": 1, "engine": 1, **({"proposer": 1} if proposes else {})})


def test_stages_given_take_no_options(image_dirs):
    stages = stages_module.RunStages(visdiff.RunOptions(), proposing=True)
    with pytest.raises(InputError, match="give stages= or options and keywords, not both"):
        visdiff.compare(*image_dirs, stages=stages, seed=3)
