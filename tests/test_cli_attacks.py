"""Global options after the command must never take a command's own option value (issue 12 item 4)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ecomsend_cli.cli import _hoist_global_options, app
from ecomsend_cli.store import Store
from tests.factory import order, sku


def test_a_command_option_value_that_looks_global_stays_with_its_option():
    own = frozenset({"--search", "-s", "-o"})
    assert _hoist_global_options(["list-unlinked", "--search", "-v", "--store", "s.db"], own) == [
        "--store", "s.db", "list-unlinked", "--search", "-v"]
    assert _hoist_global_options(["links", "export", "-o", "--config", "-q"], own) == [
        "-q", "links", "export", "-o", "--config"]


def test_searching_for_text_like_a_global_option_searches_for_it(tmp_path):
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.record_order(order("o1", [sku("t1", "-v", "Odd -v thing", "One")]), state="blocked")
        store.record_order(order("o2", [sku("t2", "other", "Other", "One")]), state="blocked")
    r = CliRunner().invoke(app, ["list-unlinked", "--search", "-v", "--store", str(path), "--json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    found = {x["tiktok_sku_id"] for x in json.loads(r.stdout)}
    assert "t1" in found and "t2" not in found


# --- the config `init` writes ------------------------------------------------------------------


def test_a_failed_config_write_keeps_the_old_config_and_leaves_no_half_file(tmp_path):
    import pytest

    from ecomsend_cli.connect import write_new_config
    from ecomsend_cli.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text("old: 1\n")
    with pytest.raises(ConfigError, match="cannot write"):
        write_new_config(path, "shop: x\nname: \ud800\n", replace=True)  # fails midway (not UTF-8)
    assert path.read_text() == "old: 1\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["config.yaml"]


def test_a_symlink_at_the_config_path_is_replaced_never_written_through(tmp_path):
    import os
    import stat

    import pytest

    from ecomsend_cli.connect import write_new_config
    from ecomsend_cli.errors import ConfigError

    victim = tmp_path / "victim"
    victim.write_text("precious")
    path = tmp_path / "config.yaml"
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="exists already"):  # a dangling link is something there too
        write_new_config(tmp_path / "dangling.yaml", "new")
    assert not (tmp_path / "nowhere").exists()
    path.symlink_to(victim)
    assert write_new_config(path, "new: 1\n", replace=True) == tmp_path / "config.yaml.bak"
    assert victim.read_text() == "precious" and not path.is_symlink()
    assert path.read_text() == "new: 1\n" and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.readlink(tmp_path / "config.yaml.bak") == str(victim)


# --- ids and limits past what SQLite holds ------------------------------------------------------


def test_an_id_or_limit_too_large_for_sqlite_is_a_usage_error_not_a_traceback(tmp_path):
    import pytest

    store = str(tmp_path / "s.db")
    huge = str(2**64)
    for argv in (["unlink", "--batch", huge, "--yes"], ["history", "-n", huge], ["orders", "-n", huge]):
        r = CliRunner().invoke(app, ["--store", store, *argv])
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            pytest.fail(f"{argv}: {r.exception!r}")
        assert r.exit_code == 2 and "not in the range" in r.stderr, (argv, r.stderr)
