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
