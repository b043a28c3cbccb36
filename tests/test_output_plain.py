"""Talk written to a file or a pipe without Rich is what Rich itself writes there (output.py).

A cron log must read the same whether a line went through Rich or not: the
plain path is held to Rich's own output for any text, and steps aside
wherever Rich might decide differently (tabs, variables that make Rich take a
pipe for a terminal).
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from ecomsend_cli import output
from ecomsend_cli.output import Output
from ecomsend_cli.text import terminal_safe

PIECES = st.sampled_from(["a", "Z", " ", "é", "中文", "😀", "[red]", "[/]", ":fire:", "\n", "x" * 90, "\u0301",
                          "\u200b", "\u00a0", "[link=x]y[/link]", "\x1b[31m", "\u202e", "\r", "\x07", "  "])
TEXT = st.one_of(st.text(), st.lists(PIECES, max_size=30).map("".join))


def rich_writes(message: str, style: str | None) -> str:
    """What Output's Rich console writes to a file for ``message``."""
    file = io.StringIO()
    Console(file=file, highlight=False, soft_wrap=True, emoji=False).print(
        terminal_safe(message), markup=False, style=style)
    return file.getvalue()


def piped_stderr(patch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr a file, and none of the variables that make Rich take it for a terminal (set in the
    test itself: pytest puts its own stderr back between a fixture and the test)."""
    for name in output._RICH_TERMINAL_VARIABLES:
        patch.delenv(name, raising=False)
    file = io.StringIO()
    patch.setattr("sys.stderr", file)
    return file


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing on a shared machine
@given(message=TEXT, level=st.sampled_from(["info", "warn", "error", "success"]))
def test_a_line_written_plainly_is_what_rich_writes(message, level):
    with pytest.MonkeyPatch.context() as patch:
        file = piped_stderr(patch)
        out = Output()
        getattr(out, level)(message)
        assert out._err is None or "\t" in message  # Rich was not needed
    said = {"warn": f"warning: {message}", "error": f"error: {message}"}.get(level, message)
    assert file.getvalue() == rich_writes(said, None)


def test_tabs_and_terminal_variables_go_through_rich(monkeypatch):
    stderr = piped_stderr(monkeypatch)
    out = Output()
    out.info("a\tb")
    assert out._err is not None and stderr.getvalue() == rich_writes("a\tb", None) == "a       b\n"
    monkeypatch.setenv("FORCE_COLOR", "1")  # Rich then takes the pipe for a terminal, and colours it
    forced = Output()
    forced.error("boom")
    assert forced._err is not None and forced.err_is_terminal
    assert "\x1b[" in stderr.getvalue().splitlines()[-1]


def test_a_piped_table_needs_no_rich(monkeypatch):
    piped_stderr(monkeypatch)
    stdout = io.StringIO()
    monkeypatch.setattr("sys.stdout", stdout)
    out = Output()
    out.table(["SKU", "Title"], [["A-1", "Mug\tred"], ["B-2", None]])
    assert stdout.getvalue() == "SKU\tTitle\nA-1\tMug red\nB-2\t\n"
    assert out._out is None and out._err is None
