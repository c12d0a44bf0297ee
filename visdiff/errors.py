"""Exceptions raised by visdiff.

Every failure a user can cause (bad paths, too few images, unknown backends, an LLM that
answers nothing usable) raises a subclass of :class:`VisdiffError`, so the CLI can turn it
into a one-line message and a non-zero exit code instead of a traceback.
"""


class VisdiffError(Exception):
    """Base class for errors caused by input, configuration or a remote service."""


class InputError(VisdiffError, ValueError):
    """Bad user input: missing folders, too few readable images, malformed files."""


class OptionValueError(InputError):
    """A run option outside its declared values; ``option`` names the field, so the CLI can name its flag."""

    def __init__(self, option: str, requirement: str, value) -> None:
        super().__init__(f"{option} must be {requirement}, got {value!r}")
        self.option, self.requirement, self.value = option, requirement, value


class BackendError(VisdiffError, ValueError):
    """Unknown backend name or a backend that cannot be set up (missing extra, bad model id)."""


class ServiceError(VisdiffError, RuntimeError):
    """A remote or local model service failed after retries (LLM API, captioning server)."""


def excerpt(text: str, limit: int = 80) -> str:
    """``text`` cut to at most ``limit`` characters for a message ("..." marks the cut): a
    user's 5,000-character hypothesis is named, not printed whole."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Control characters (C0, DEL, C1) as ``\\xNN``: printed as they are, an ESC in a file name
# or a hypothesis would command the terminal and a newline would forge a log line.
_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7f, 0xa0))}


def display_text(text: str) -> str:
    """``text`` (a name or hypothesis from the user's files) safe to print: its control
    characters shown as ``\\xNN`` escapes."""
    return text.translate(_CONTROL_ESCAPES)
