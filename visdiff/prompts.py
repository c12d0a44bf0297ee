"""Prompt templates: text files under ``prompts/``, loaded by name, recorded by hash.

A template marks its fields as ``$name`` (``$$`` is a literal dollar sign). Results record
the prompt's name and SHA-256 so a changed prompt is visible in every report and cache key.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from visdiff.errors import BackendError

# Installed: package data at visdiff/prompts/*.txt. Editable checkout: the top-level prompts/.
_REPO_PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


@dataclass(frozen=True)
class Prompt:
    """A named prompt template and the SHA-256 of its text."""

    name: str
    text: str
    sha256: str

    def render(self, **fields: object) -> str:
        """The template with every ``$field`` replaced; a missing field raises ``BackendError``."""
        try:
            return string.Template(self.text).substitute({k: str(v) for k, v in fields.items()})
        except KeyError as e:
            raise BackendError(f"prompt {self.name!r} needs the field ${e.args[0]}") from e
        except ValueError as e:
            raise BackendError(f"prompt {self.name!r} is not a valid template: {e}") from e


def _prompt_dirs() -> list[Path]:
    packaged = Path(str(resources.files("visdiff"))) / "prompts"
    return [d for d in (packaged, _REPO_PROMPTS) if d.is_dir()]


def list_prompts() -> list[str]:
    """Names of the built-in prompts."""
    return sorted({p.stem for d in _prompt_dirs() for p in d.glob("*.txt")})


def load_prompt(name: str) -> Prompt:
    """Load a built-in prompt by name (``"propose"``) or any template file by path.

    Parameters
    ----------
    name : str
        A name from :func:`list_prompts`, or a path to a ``.txt`` file.

    Returns
    -------
    Prompt
        ``name`` is the built-in name or the file's path as given.

    Examples
    --------
    >>> prompt = load_prompt("propose")
    >>> prompt.name, len(prompt.sha256)
    ('propose', 64)
    """
    candidates = [d / f"{name}.txt" for d in _prompt_dirs()]
    if name.endswith(".txt"):
        candidates.insert(0, Path(name).expanduser())
    for path in candidates:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            return Prompt(name=name, text=text, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
    raise BackendError(f"unknown prompt {name!r}; built-in prompts: {', '.join(list_prompts())} (or a path to a .txt file)")
