"""Prompt templates: text files in named prompt sets, loaded by name, recorded by hash.

A prompt set is a folder of templates named after what they are for: ``propose.txt`` (llm
proposer), ``propose_paired.txt`` (llm proposer on paired sets, ``--pair-by``),
``propose_vlm.txt`` (vlm proposer), ``propose_retry.txt`` (the reminder after an unusable
answer), ``refine.txt`` (refinement rounds, ``--refine``), ``caption.txt`` (captioners),
``judge.txt`` (the benchmark's llm judge) and, optionally, ``system.txt`` (the chat system
message). Built-in sets live under ``prompts/``:

- ``strict`` (default): short, CLIP-friendly phrases typical of A but not of B, one concept
  each, no comparisons;
- ``paper``: the reference implementation's semantics, in our own words: concepts *more likely
  true of A than of B*, worked examples of good and bad answers, relational phrases allowed,
  framed as finding a distribution shift; a system message; the judge asks whether the
  prediction agrees with the description of A.

Any folder holding such files is a prompt set too (``--prompts DIR``). A template marks its
fields as ``$name`` (``$$`` is a literal dollar sign). Results record each prompt's set, name
and SHA-256, so a changed prompt is visible in every report and cache key.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from visdiff.errors import BackendError, InputError

# Installed: package data at visdiff/prompts/. Editable checkout: the top-level prompts/.
_REPO_PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
DEFAULT_PROMPT_SET = "strict"


@dataclass(frozen=True)
class Prompt:
    """A named prompt template, the set it came from and the SHA-256 of its text."""

    name: str
    text: str
    sha256: str
    prompt_set: str = ""

    def render(self, **fields: object) -> str:
        """The template with every ``$field`` replaced; a missing field raises ``BackendError``."""
        try:
            return string.Template(self.text).substitute({k: str(v) for k, v in fields.items()})
        except KeyError as e:
            raise BackendError(f"prompt {self.name!r} needs the field ${e.args[0]}") from e
        except ValueError as e:
            raise BackendError(f"prompt {self.name!r} is not a valid template: {e}") from e

    def record(self) -> dict:
        """Set, name and hash, for result records."""
        return {"prompt_set": self.prompt_set, "prompt": self.name, "prompt_sha256": self.sha256}


def _read_prompt(path: Path, *, name: str, prompt_set: str) -> Prompt:
    text = path.read_text(encoding="utf-8-sig")
    return Prompt(name=name, text=text, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), prompt_set=prompt_set)


@dataclass(frozen=True)
class PromptSet:
    """A folder of prompt templates; ``name`` is the built-in set's name or the folder as given."""

    name: str
    folder: Path

    def has(self, prompt: str) -> bool:
        return (self.folder / f"{prompt}.txt").is_file()

    def load(self, prompt: str) -> Prompt:
        """The set's template ``prompt`` (``"propose"``), or ``InputError`` naming the file."""
        path = self.folder / f"{prompt}.txt"
        if not path.is_file():
            raise InputError(f"prompt set {self.name!r} has no {prompt}.txt (looked in {self.folder})")
        return _read_prompt(path, name=prompt, prompt_set=self.name)


def _prompt_roots() -> list[Path]:
    packaged = Path(str(resources.files("visdiff"))) / "prompts"
    return [d for d in (packaged, _REPO_PROMPTS) if d.is_dir()]


def list_prompt_sets() -> list[str]:
    """Names of the built-in prompt sets."""
    return sorted({d.name for root in _prompt_roots() for d in root.iterdir() if d.is_dir()})


def get_prompt_set(name: str | PromptSet | None = None) -> PromptSet:
    """A built-in prompt set by name (default ``strict``) or any folder of templates by path."""
    if isinstance(name, PromptSet):
        return name
    name = name or DEFAULT_PROMPT_SET
    for root in _prompt_roots():
        if (root / name).is_dir() and "/" not in name:
            return PromptSet(name, root / name)
    folder = Path(name).expanduser()
    if folder.is_dir():
        return PromptSet(name, folder)
    raise InputError(f"unknown prompt set {name!r}; choose one of: {', '.join(list_prompt_sets())} (or a folder of .txt templates)")


def list_prompts(prompt_set: str | None = None) -> list[str]:
    """Names of the prompts of a set (default ``strict``)."""
    return sorted(p.stem for p in get_prompt_set(prompt_set).folder.glob("*.txt"))


def load_prompt(name: str, prompt_set: str | PromptSet | None = None) -> Prompt:
    """Load a prompt by name from a prompt set (default ``strict``), or any template file by path.

    Parameters
    ----------
    name : str
        A name from :func:`list_prompts` (``"propose"``), or a path to a ``.txt`` file.
    prompt_set : str or PromptSet, optional
        A built-in set (``"strict"``, ``"paper"``) or a folder of templates.

    Returns
    -------
    Prompt
        ``name`` is the prompt's name or the file's path as given.

    Examples
    --------
    >>> prompt = load_prompt("propose", "paper")
    >>> prompt.name, prompt.prompt_set, len(prompt.sha256)
    ('propose', 'paper', 64)
    """
    if name.endswith(".txt"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise InputError(f"prompt file {name!r} does not exist")
        return _read_prompt(path, name=name, prompt_set="")
    chosen = get_prompt_set(prompt_set)
    if not chosen.has(name):
        raise BackendError(f"unknown prompt {name!r} in prompt set {chosen.name!r}; "
                           f"its prompts: {', '.join(list_prompts(chosen.name))} (or a path to a .txt file)")
    return chosen.load(name)
