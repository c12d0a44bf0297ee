"""Each numeric run option's values are declared once (``Bounds`` on its RunOptions field):
the Python API and the CLI accept and refuse the same values, and the CLI names the flag."""

from __future__ import annotations

import dataclasses
import re

import pytest

import visdiff
from tests.cli_helpers import run_cli
from visdiff.cli.options import DECLARED, flag_of
from visdiff.errors import InputError
from visdiff.options import RunOptions, bounds_of


BOUNDED = [f.name for f in dataclasses.fields(RunOptions) if "bounds" in f.metadata]


def test_the_cli_declares_no_range_of_its_own_for_a_run_option():
    for name in BOUNDED:
        if name in DECLARED:
            declaration = DECLARED[name].annotation.__metadata__[0]
            assert (declaration.min, declaration.max) == (None, None), name


@pytest.mark.parametrize(("name", "accepted", "refused", "command"), [
    ("alpha", 1e-9, 1.0, "compare"), ("alpha", 0.999, 0.0, "compare"), ("holdout", 0.0, 1.0, "compare"),
    ("rounds", 1, 0, "compare"), ("seed", 0, -1, "compare"), ("merge_threshold", -1.0, 1.01, "compare"),
    ("shard_seconds", 0.001, 0.0, "embed"), ("caption_temperature", 2.0, 2.5, "compare"),
    ("samples_per_set", 1, 0, "compare"),
])
def test_api_and_cli_agree_on_every_bound(image_dirs, name, accepted, refused, command):
    RunOptions.build(llm="m", **{name: accepted})  # an LLM proposer: rounds and samples are its to take
    with pytest.raises(InputError, match=re.escape(f"{name} must be {bounds_of(name).what}, got")):
        RunOptions.build(llm="m", **{name: refused})
    a, b = image_dirs
    result = run_cli(command, a, b, flag_of(name), refused)
    # Typer once allowed --alpha 0 and 1 (RunOptions refused them); now one declaration decides.
    assert result.exit_code == 2
    assert f"invalid value for '{flag_of(name)}': must be {bounds_of(name).what}" in " ".join(result.output.split())


def test_flags_are_the_declared_ones():
    assert flag_of("samples_per_set") == "--samples" and flag_of("alpha") == "--alpha"


def test_bools_are_not_numbers():
    with pytest.raises(InputError, match="rounds must be a whole number >= 1, got True"):
        visdiff.RunOptions(rounds=True)
