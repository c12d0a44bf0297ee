"""visdiff.progress: bars on a terminal only, silence with --quiet or off a terminal, logs above bars."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from visdiff.progress import progress_bar, progress_enabled


class FakeTerminal(io.StringIO):
    """A stderr that says it is a terminal, so rich draws live bars into it."""

    def isatty(self) -> bool:
        return True


def fake_terminal(monkeypatch) -> FakeTerminal:
    # Called in the test body: pytest's output capture re-sets sys.stderr after fixtures run.
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    return stream


def test_enabled_only_on_a_terminal_and_not_quiet(monkeypatch):
    fake_terminal(monkeypatch)
    assert progress_enabled() is True
    assert progress_enabled(quiet=True) is False
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_enabled() is False
    monkeypatch.setattr(sys, "stderr", None)
    assert progress_enabled() is False


def test_bar_draws_on_a_terminal(monkeypatch):
    terminal = fake_terminal(monkeypatch)
    with progress_bar("embedding images", 3) as bar:
        for _ in range(3):
            bar.advance()
    output = terminal.getvalue()
    assert "embedding images" in output and "3/3" in output


@pytest.mark.parametrize("enabled", [False, None])
def test_no_output_when_off(enabled, capsys):
    # Under pytest stderr is captured, not a terminal: enabled=None must stay silent too.
    with progress_bar("captioning", 2, enabled=enabled) as bar:
        bar.advance(2)
    assert capsys.readouterr().err == ""


def test_quiet_silences_a_terminal(monkeypatch):
    terminal = fake_terminal(monkeypatch)
    with progress_bar("captioning", 2, enabled=progress_enabled(quiet=True)) as bar:
        bar.advance(2)
    assert terminal.getvalue() == ""


def test_bars_nest(monkeypatch):
    terminal = fake_terminal(monkeypatch)
    with progress_bar("benchmark pairs", 2) as pairs:
        for _ in range(2):
            with progress_bar("embedding images", 4) as images:
                images.advance(4)
            pairs.advance()
    output = terminal.getvalue()
    assert "benchmark pairs" in output and "2/2" in output and "4/4" in output


def test_log_lines_go_through_the_live_display(monkeypatch):
    terminal = fake_terminal(monkeypatch)
    handler = logging.StreamHandler(terminal)
    logger = logging.getLogger("visdiff")
    logger.addHandler(handler)
    try:
        with progress_bar("captioning", 1):
            assert handler.stream is sys.stderr and handler.stream is not terminal
            logging.getLogger("visdiff.captioners").warning("skipping broken.png: not an image file")
        assert handler.stream is terminal
    finally:
        logger.removeHandler(handler)
    assert terminal.getvalue().count("skipping broken.png: not an image file") == 1
