"""Shared fixtures: an isolated user environment, a temp store, the real CLI."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from ecomsend_cli.cli import app

# Property tests draw the same examples on every run (CI must not turn red on a
# new random draw); `pytest --hypothesis-profile=explore` draws fresh ones, many more.
settings.register_profile("ecomsend", derandomize=True, database=None)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile("ecomsend")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"


def fixture_path(name: str) -> Path:
    """A file of ../shared/fixtures, or skip the test saying why."""
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared third-party fixtures are not beside this checkout")
    return path


@pytest.fixture(autouse=True)
def isolated_user(tmp_path_factory, monkeypatch):
    """Point every user folder at a temp dir and drop ecomsend variables from the env."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith("ECOMSEND_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("USER", "tester")
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def store_path(tmp_path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def cli(store_path):
    """Run the real CLI in-process against the temp store: ``cli("autolink", "--yes")``."""

    def run(*args: str, input: str | None = None, store: Path | None = store_path, env=None) -> Result:
        argv = (["--store", str(store)] if store is not None else []) + list(args)
        result = CliRunner().invoke(app, argv, input=input, env=env, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


def without_options(text: str) -> str:
    """``text`` with the global options hints repeat (``--config``/``--store`` FILE) taken out
    of each `ecomsend …`, for tests about what a hint says rather than where it points."""
    import re

    return re.sub(r"`ecomsend (?:--(?:config|store) \S+ )+", "`ecomsend ", text)


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ecomsend_cli", *args]


@pytest.fixture
def sandbox(tmp_path):
    """Both simulators on 127.0.0.1 with the demo seed, and the config that uses them."""
    from ecomsend_cli.sandbox import Sandbox

    with Sandbox(tmp_path / "sandbox", "demo") as box:
        box.config_file = box.write_config()
        yield box


@pytest.fixture
def sb_cli(sandbox):
    """The real CLI, in-process, configured for the sandbox (its own store)."""

    def run(*args: str, input: str | None = None, env=None) -> Result:
        argv = ["--config", str(sandbox.config_file), *args]
        result = CliRunner().invoke(app, argv, input=input, env=env, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def synced(sandbox, sb_cli):
    """The demo's orders linked and created in Shopify: ``{TikTok order id: Shopify order}``."""
    for args in (("sync-orders",), ("autolink", "--yes"), ("link", "STK-1", "STK-001"), ("sync-orders",)):
        r = sb_cli(*args)
        assert r.exit_code in ((0, 3) if args[0] == "sync-orders" else (0,)), (args, r.stderr)
    return {o["source_identifier"]: o for o in sandbox.shopify.orders()}


@pytest.fixture(scope="session")
def empty_store_file(tmp_path_factory):
    """A migrated empty store, made once per session: property tests copy it per example
    (a copy is cheaper than migrating)."""
    from ecomsend_cli.store import Store

    path = tmp_path_factory.mktemp("empty") / "store.db"
    Store.open(path).close()
    return path
