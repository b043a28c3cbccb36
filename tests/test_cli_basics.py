"""Start-up, help, version, completion and the output conventions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import python_cmd

COMMANDS = [
    ["list-unlinked"], ["autolink"], ["link"], ["unlink"], ["history"], ["links"],
    ["links", "export"], ["config", "show"], ["sync-orders"], ["orders"], ["catalog", "refresh"],
    ["doctor"], ["demo"], ["sandbox", "serve"],
]


def test_help_imports_neither_httpx_nor_the_sandbox():
    code = (
        "import sys\n"
        "sys.argv = ['ecomsend', '--help']\n"
        "from ecomsend_cli.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'graphql') "
        "or m.startswith('ecomsend_cli.sandbox') or m == 'ecomsend_cli.store')\n"
        "print('LOADED', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED []" in out.stdout


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(cli, cmd):
    r = cli(*cmd, "--help")
    assert r.exit_code == 0
    assert "Example" in r.stdout


def test_top_help_documents_exit_codes(cli):
    r = cli("--help")
    assert "75" in r.stdout and "blocked or failed" in r.stdout


def test_version_and_python_dash_m():
    out = subprocess.run(python_cmd("--version"), capture_output=True, text=True, check=True)
    from ecomsend_cli import __version__

    assert out.stdout.strip() == f"ecomsend {__version__}"


def test_usage_error_exit_code_2(cli):
    assert cli("link").exit_code == 2
    assert cli("no-such-command").exit_code == 2


def test_shell_completion_is_offered(tmp_path):
    # Typer finds the shell by walking up the process tree (shellingham), not from $SHELL:
    # run the command from a bash, as a user would, so the test does not depend on what
    # started pytest (a detached job has no shell above it, and typer then names none).
    script = 'out=$("$@" --show-completion); status=$?; printf %s "$out"; exit $status'
    ecomsend = Path(sys.executable).with_name("ecomsend")  # the installed command: its name is in the script
    r = subprocess.run(["bash", "-c", script, "bash", str(ecomsend)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "complete" in r.stdout and "_ECOMSEND_COMPLETE" in r.stdout.upper()


def test_no_color_is_respected_on_a_terminal(store_path):
    from ecomsend_cli.store import Store
    from tests.terminal import Terminal

    Store.open(store_path).close()
    term = Terminal("--store", str(store_path), "link", "nope", "1", env={"NO_COLOR": "1"})
    assert term.wait() == 1
    assert "error: no TikTok SKU" in term.screen
    assert "\x1b[" not in term.seen
    term = Terminal("--store", str(store_path), "link", "nope", "1")
    assert term.wait() == 1
    assert "\x1b[" in term.seen  # colour on a terminal by default
