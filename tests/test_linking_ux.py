"""The linking commands as an operator meets them (issue 12, items 2, 3, 4, 6, 7, 10):
states told as they are, hints that work when pasted, names beside ids, batches undone."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from typer.testing import CliRunner

from ecomsend_cli.cli import app
from ecomsend_cli.config import user_config_path
from ecomsend_cli.store import LinkChange, Store
from tests.factory import order, sku, variant

V = "gid://shopify/ProductVariant/"


def invoke(*argv: str, input: str | None = None, env=None):
    return CliRunner().invoke(app, list(argv), input=input, env=env, catch_exceptions=False)


@pytest.fixture
def shop(tmp_path):
    """A store in a folder whose name needs quoting: a SKU-equal pair (t1), one with no
    match (t2), one ambiguous (t3), another pair (t4); o1 needs t1 only, o2 t2 and t4."""
    path = tmp_path / "my shop" / "store.db"
    path.parent.mkdir()
    with Store.open(path) as store:
        store.replace_variants([
            variant(1, "MUG-RED", "Mug", "Red"),
            variant(2, "MUG-BLUE", "Mug", "Blue"),
            variant(3, "TEE-S", "Tee", "Small"),
            variant(4, "CAP", "Cap", "One"),
            variant(5, "cap", "Cap (old)", "One"),
            variant(6, "HAT-1", "Hat", "Wool"),
        ])
        t1, t2, t3, t4 = (sku("t1", "mug-red", "TT Mug", "Red"), sku("t2", "mystery", "TT Tee", "S"),
                          sku("t3", "CAP", "TT Cap", "One"), sku("t4", "HAT-1", "TT Hat", "Wool"))
        store.record_order(order("o1", [t1]), state="blocked")
        store.record_order(order("o2", [t2, t4]), state="blocked")
        store.record_order(order("o3", [t3]), state="blocked")
    return path


# --- item 4: global options after the command, and in every hint ---------------------------


def test_global_options_after_the_command_are_global_options():
    from ecomsend_cli.cli import _hoist_global_options

    assert _hoist_global_options(["link", "t1", "--store", "s.db", "-q"]) == [
        "--store", "s.db", "-q", "link", "t1"]
    assert _hoist_global_options(["-v", "history", "--config=c.yaml", "-cx.yaml", "-n", "3"]) == [
        "-v", "--config=c.yaml", "-cx.yaml", "history", "-n", "3"]
    # After `--` nothing is an option; a global option before the command stays where it is.
    assert _hoist_global_options(["--store", "s.db", "unlink", "--", "--store"]) == [
        "--store", "s.db", "unlink", "--", "--store"]
    assert _hoist_global_options(["links", "export", "-o", "f.csv", "--store", "s"]) == [
        "--store", "s", "links", "export", "-o", "f.csv"]


def test_a_store_given_after_the_command_is_the_store_read(shop):
    r = invoke("list-unlinked", "--store", str(shop), "--json")
    assert r.exit_code == 0, r.output
    assert {x["tiktok_sku_id"] for x in json.loads(r.stdout)} == {"t1", "t2", "t3", "t4"}
    with Store.open(shop) as store:
        store.apply_links([LinkChange("t1", V + "1")], source="manual", actor="x")
    r = invoke("unlink", "t1", "--yes", "--store", str(shop))
    assert r.exit_code == 0, r.output
    with Store.open(shop) as store:
        assert store.link("t1") is None


def test_hints_repeat_the_global_options_shell_quoted(shop):
    r = invoke("unlink", "nope", "--store", str(shop))
    assert r.exit_code == 1
    assert f"`ecomsend --store {shlex.quote(str(shop))} list-unlinked --all`" in r.stderr
    assert "'" in shlex.quote(str(shop))  # the folder name has a space: the path is quoted
    # --json puts the same pasteable hint in its error document.
    r = invoke("--store", str(shop), "autolink", "--json")
    assert json.loads(r.stdout)["error"]["hint"].startswith(f"`ecomsend --store {shlex.quote(str(shop))} ")


def test_hints_fit_the_state_no_autolink_when_only_sku_without_match_are_left(shop):
    r = invoke("--store", str(shop), "list-unlinked")
    assert "autolink --dry-run` reviews them" in r.stderr and "2 SKUs have a Shopify variant" in r.stderr
    assert invoke("--store", str(shop), "autolink", "--yes").exit_code == 0
    r = invoke("--store", str(shop), "list-unlinked")
    assert r.exit_code == 0
    assert "autolink" not in r.stderr
    assert "2 SKUs need a variant chosen by hand." in r.stderr
    assert "list-unlinked --csv > todo.csv`" in r.stderr  # no terminal here: the CSV round trip


# --- item 2: nothing configured, nothing pulled ---------------------------------------------


@pytest.mark.parametrize("argv", [["list-unlinked"], ["autolink", "--dry-run"], ["list-unlinked", "--json"]])
def test_with_no_config_and_nothing_pulled_it_says_so_and_fails(argv):
    r = invoke(*argv)
    assert r.exit_code == 1
    assert f"no config found at {user_config_path()}" in r.stderr
    assert "copy config.example.yaml there" in r.stderr and "`ecomsend doctor`" in r.stderr
    assert "No unlinked" not in r.output and "would link" not in r.output
    if "--json" in argv:
        assert json.loads(r.stdout)["error"]["exit_code"] == 1


def test_with_a_config_and_nothing_pulled_it_says_run_sync_orders(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"store: {tmp_path / 's.db'}\ntiktok:\n  app_key: k\n  app_secret: s\n"
                      "  access_token: t\n", encoding="utf-8")
    config.chmod(0o600)
    for argv in (["list-unlinked"], ["autolink", "--dry-run"]):
        r = invoke("--config", str(config), *argv)
        assert r.exit_code == 0, r.output
        assert r.stderr.strip() == f"No orders pulled yet: run `ecomsend --config {config} sync-orders`."
    r = invoke("--config", str(config), "list-unlinked", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    # TikTok not configured: sync-orders could not pull either, so that is what is said (exit 1).
    config.write_text(f"store: {tmp_path / 's.db'}\n", encoding="utf-8")
    r = invoke("--config", str(config), "list-unlinked")
    assert r.exit_code == 1 and "TikTok Shop is not configured" in r.stderr


# --- item 3: errors name a command that works ---------------------------------------------------


def hinted(stderr: str) -> list[str]:
    """The commands a message suggests: every backticked `ecomsend …`."""
    return re.findall(r"`(ecomsend [^`]+)`", stderr)


def run_hint(command: str, *, input: str | None = None):
    """Run a hint as pasted into a shell (in-process; `> FILE` redirects stdout into FILE)."""
    argv = shlex.split(command)
    assert argv[0] == "ecomsend"
    argv = argv[1:]
    target = None
    if ">" in argv:
        at = argv.index(">")
        argv, target = argv[:at], argv[at + 1]
    r = invoke(*argv, input=input)
    if target:
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(r.stdout)
    return r


def test_unlink_without_a_terminal_names_unlink_yes_which_works(shop):
    with Store.open(shop) as store:
        store.apply_links([LinkChange("t1", V + "1")], source="manual", actor="x")
    r = invoke("--store", str(shop), "unlink", "mug-red")
    assert r.exit_code == 1
    assert "--dry-run" not in r.stderr
    [command] = hinted(r.stderr)
    assert command == f"ecomsend --store {shlex.quote(str(shop))} unlink mug-red --yes"
    assert run_hint(command).exit_code == 0
    with Store.open(shop) as store:
        assert store.link("t1") is None


def test_the_picker_without_a_terminal_names_a_link_from_the_catalog_which_works(shop):
    r = invoke("--store", str(shop), "link", "mug-red", "--yes")
    assert r.exit_code == 1
    assert "pass --yes" not in r.stderr and "--dry-run" not in r.stderr
    commands = hinted(r.stderr)
    quoted = shlex.quote(str(shop))
    # The best match from the catalog, by number and by its SKU, and what it is.
    assert commands == [f"ecomsend --store {quoted} link mug-red 1", f"ecomsend --store {quoted} link mug-red MUG-RED"]
    assert "for Mug / Red (MUG-RED)" in r.stderr
    assert run_hint(commands[1]).exit_code == 0
    with Store.open(shop) as store:
        assert store.link("t1").shopify_variant_id == V + "1"


def test_replacing_without_force_names_the_link_force_command(shop):
    with Store.open(shop) as store:
        store.apply_links([LinkChange("t1", V + "1")], source="manual", actor="x")
    r = invoke("--store", str(shop), "link", "t1", "MUG-BLUE")
    assert r.exit_code == 1 and "'mug-red'" in r.stderr
    [command] = hinted(r.stderr)
    assert command.endswith("link t1 2 --force")
    assert run_hint(command).exit_code == 0
    with Store.open(shop) as store:
        assert store.link("t1").shopify_variant_id == V + "2"


# --- item 4 MUST SHOW: every hint printed, pasted, runs ------------------------------------------


def test_every_hint_of_the_linking_commands_runs_when_pasted(sandbox, sb_cli, tmp_path, monkeypatch):
    """Drive the linking commands over the sandbox through its states (nothing pulled, pulled,
    auto-linked, by hand, imported, undone, errors), collect every `ecomsend …` they suggest,
    and run each as pasted: it must succeed (sync-orders: 0, or 3 while orders wait)."""
    monkeypatch.chdir(tmp_path)  # `… > todo.csv` lands here
    expected = {"sync-orders": (0, 3)}
    ran: dict[str, int] = {}

    def step(*argv: str, code: int | tuple[int, ...] = (0,), input: str | None = None) -> str:
        r = sb_cli(*argv, input=input)
        assert r.exit_code in ((code,) if isinstance(code, int) else code), (argv, r.output)
        for command in hinted(r.stderr):
            if command in ran:
                continue
            assert str(sandbox.config_file) in command, command  # the user's --config, repeated
            name = next(a for a in shlex.split(command)[1:] if not a.startswith("-") and "/" not in a)
            result = run_hint(command, input="")
            ran[command] = result.exit_code
            assert result.exit_code in expected.get(name, (0,)), (argv, command, result.output)
        return r.stderr

    step("list-unlinked")  # nothing pulled yet: `sync-orders` (which pulls)
    step("autolink", "--dry-run")
    step("list-unlinked")
    step("autolink", "--dry-run")
    step("unlink", "--batch", "1", "--yes")  # undo the autolink the hint ran
    step("autolink", "--yes")  # and its hint undoes it again
    step("link", "MUG-11OZ", "MUG-11OZ")
    step("link", "TEE-BLK-S", "44011")
    step("autolink", code=1)  # no terminal: `autolink --yes` / `--dry-run`
    step("link", "STK-1", code=1)  # the picker without a terminal: a link from the catalog
    step("link", "MUG-11OZ", "CASE-IP15", code=1)  # replacing needs --force: named
    step("unlink", "TEE-BLK-S", code=1)  # no terminal: `unlink … --yes`
    step("unlink", "nothing-like-this", code=1)
    step("unlink", "--batch", "99", code=1)
    step("history", "-n", "3")
    step("list-unlinked")
    step("links")
    (tmp_path / "mine.csv").write_text("tiktok_seller_sku,shopify_sku\nMUG-11OZ,MUG-11OZ\n", encoding="utf-8")
    step("link", "--csv", "mine.csv", code=1)  # replaces a link: `--force` / `--dry-run` named
    step("link", "--csv", "mine.csv", "--force")  # the undo of the import is named
    assert len(ran) >= 12, ran
    assert any(" sync-orders" in c for c in ran) and any("unlink --batch" in c for c in ran)
    assert any(c.endswith("link --csv todo.csv --dry-run") for c in ran)


# --- item 6: names beside ids ----------------------------------------------------------------------


def test_history_shows_the_seller_sku_and_the_variant_sku_and_title(shop):
    with Store.open(shop) as store:
        store.apply_links([LinkChange("t1", V + "1")], source="manual", actor="x")
        store.apply_links([LinkChange("t1", V + "2", V + "1")], source="manual", actor="x")
    r = invoke("--store", str(shop), "history")
    header, newest, oldest = (line.split("\t") for line in r.stdout.splitlines())
    assert header == ["When", "TikTok SKU", "Action", "Old", "New", "Source", "Who", "Batch"]
    assert newest[1:5] == ["t1 mug-red", "relink", "1 Mug / Red (MUG-RED)", "2 Mug / Blue (MUG-BLUE)"]
    assert oldest[3:5] == ["", "1 Mug / Red (MUG-RED)"]
    # --json keeps the full GIDs.
    rows = json.loads(invoke("--store", str(shop), "history", "--json").stdout)
    assert rows[0]["old_variant_id"] == V + "1" and rows[0]["batch_id"] is None


def test_a_blocked_reason_names_the_seller_sku(sb_cli):
    assert sb_cli("sync-orders").exit_code == 3
    reasons = [o["reason"] for o in json.loads(sb_cli("orders", "--state", "blocked", "--json").stdout)]
    assert "1 unlinked SKU: 1729600000001000006 (MUG-TRAVEL)" in reasons
    assert any(re.fullmatch(r"2 unlinked SKUs: \d+ \([^)]+\), \d+ \([^)]+\)", x) for x in reasons), reasons


# --- item 7: autolink's loose ends and batches --------------------------------------------------


def test_autolink_lists_what_it_cannot_link_by_name_and_says_what_can_now_sync(shop):
    r = invoke("--store", str(shop), "autolink", "--yes")
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert "Ambiguous, not linked (1 SKU): several Shopify variants share the SKU." in lines
    assert "  t3 'CAP': 4 (Cap / One), 5 (Cap (old) / One)" in lines
    assert "No Shopify variant with the same SKU (1 SKU):" in lines
    assert "  t2 'mystery' TT Tee / S" in lines
    quoted = shlex.quote(str(shop))
    assert f"Linked 2 SKUs (batch 1; `ecomsend --store {quoted} unlink --batch 1 --yes` undoes it)." in lines
    # o1 needed t1 only; o2 still waits for t2.
    assert f"1 blocked order can now sync: run `ecomsend --store {quoted} sync-orders`." in lines
    assert "products" not in r.stderr.lower() and "(s)" not in r.stderr
    rows = json.loads(invoke("--store", str(shop), "history", "--json").stdout)
    assert {(x["tiktok_sku_id"], x["batch_id"]) for x in rows} == {("t1", 1), ("t4", 1)}


def test_autolink_help_has_no_popup():
    r = invoke("autolink", "--help")
    assert "popup" not in r.stdout and "unlink --batch ID" in r.stdout


def test_unlink_batch_reverts_what_is_still_as_the_batch_left_it_and_reports_the_rest(shop):
    assert invoke("--store", str(shop), "autolink", "--yes").exit_code == 0  # batch 1: t1, t4
    with Store.open(shop) as store:
        store.apply_links([LinkChange("t4", V + "3", V + "6")], source="manual", actor="x")  # changed since
    before = (shop.read_bytes())
    r = invoke("--store", str(shop), "unlink", "--batch", "1")  # no terminal, no --yes: asks, so refuses
    assert r.exit_code == 1 and hinted(r.stderr)[-1].endswith("unlink --batch 1 --yes")
    assert shop.read_bytes() == before
    r = invoke("--store", str(shop), "unlink", "--batch", "1", "--yes")
    assert r.exit_code == 0, r.output
    assert "1 link changed since batch 1, kept as it is now:" in r.stderr
    assert "  t4 HAT-1: the batch left 6 Hat / Wool (HAT-1), now 3 Tee / Small (TEE-S)" in r.stderr
    assert "Undid 1 link of batch 1 (as batch 2)." in r.stderr
    with Store.open(shop) as store:
        assert store.link("t1") is None and store.link("t4").shopify_variant_id == V + "3"
        assert [(h.tiktok_sku_id, h.action, h.batch_id) for h in store.history(limit=1)] == [("t1", "unlink", 2)]
    # The undo is a batch too: undoing it puts the auto link back, with its source.
    assert invoke("--store", str(shop), "unlink", "--batch", "2", "--yes").exit_code == 0
    with Store.open(shop) as store:
        assert (store.link("t1").shopify_variant_id, store.link("t1").source) == (V + "1", "auto")


def test_a_csv_import_is_a_batch_that_unlink_batch_undoes(shop, tmp_path):
    with Store.open(shop) as store:
        store.apply_links([LinkChange("t1", V + "2")], source="manual", actor="x")
    f = tmp_path / "in.csv"
    f.write_text("tiktok_sku_id,shopify_variant_id\nt1,1\nt2,3\n", encoding="utf-8")
    r = invoke("--store", str(shop), "link", "--csv", str(f), "--force", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["batch_id"] == 1
    assert invoke("--store", str(shop), "unlink", "--batch", "1", "--yes").exit_code == 0
    with Store.open(shop) as store:
        assert store.link("t2") is None
        assert (store.link("t1").shopify_variant_id, store.link("t1").source) == (V + "2", "manual")


def test_unlink_needs_tiktok_or_batch_not_both(shop):
    assert invoke("--store", str(shop), "unlink").exit_code == 2
    assert invoke("--store", str(shop), "unlink", "t1", "--batch", "1").exit_code == 2
    r = invoke("--store", str(shop), "unlink", "--batch", "7")
    assert r.exit_code == 1 and "no batch 7 in the link history" in r.stderr


# --- item 10: search, sort, completion, help -------------------------------------------------------


def test_list_unlinked_search_and_sort(shop):
    def ids(*argv: str) -> list[str]:
        return [x["tiktok_sku_id"] for x in json.loads(invoke("--store", str(shop), "list-unlinked",
                                                              "--json", *argv).stdout)]

    assert ids("--search", "tt t") == ["t2"]  # product title "TT Tee", any case
    assert ids("--search", "HAT") == ["t4"]  # seller SKU
    assert ids("--sort", "sku") == ["t3", "t4", "t1", "t2"]  # CAP, HAT-1, mug-red, mystery
    assert ids("--sort", "title") == ["t3", "t4", "t1", "t2"]  # TT Cap, TT Hat, TT Mug, TT Tee
    r = invoke("--store", str(shop), "list-unlinked", "--search", "zzz")
    assert r.exit_code == 0 and r.stderr.strip() == "No unlinked TikTok SKU matches 'zzz'."
    assert invoke("--store", str(shop), "list-unlinked", "--sort", "price").exit_code == 2


def complete(words: str) -> list[str]:
    cword = str(len(shlex.split(words)) - (0 if words.endswith(" ") else 1))
    r = CliRunner().invoke(app, [], prog_name="ecomsend", env={
        "_ECOMSEND_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword})
    return r.output.split()


def test_shell_completion_offers_skus_from_the_store(shop):
    with Store.open(shop) as store:
        store.apply_links([LinkChange("t1", V + "1")], source="manual", actor="x")
    store = shlex.quote(str(shop))
    assert complete(f"ecomsend --store {store} link m") == ["mystery", "mug-red"]  # unlinked first
    assert complete(f"ecomsend --store {store} link t") == ["t3", "t4", "t2", "t1"]
    assert complete(f"ecomsend --store {store} unlink ") == ["mug-red"]  # only linked SKUs
    assert complete(f"ecomsend unlink --store {store} ") == ["mug-red"]  # the option after the command
    missing = shlex.quote(str(shop) + "x")
    assert complete(f"ecomsend --store {missing} link ") == []  # no store there: nothing, and none made
    assert not (shop.parent / "store.dbx").exists()


@pytest.mark.parametrize("name", ["link", "unlink", "autolink", "list-unlinked", "history"])
def test_help_examples_render_as_written(name):
    from ecomsend_cli.cli import linking

    doc = getattr(linking, name.replace("-", "_")).__doc__
    examples = doc.split("Examples:\n", 1)[1].splitlines()
    r = invoke(name, "--help", env={"COLUMNS": "80"})
    shown = r.stdout.splitlines()
    for line in (x.strip() for x in examples if x.strip()):
        assert any(s.strip() == line for s in shown), (line, r.stdout)


# --- on a terminal, at 80 and 160 columns (items 6 and 7) -----------------------------------------


def table_columns(screen: str, header: str) -> dict[str, str]:
    """The cells of the Rich table whose header row holds ``header``: each column's text top to
    bottom, white space removed, so what a narrow terminal folded reads whole again."""
    lines = [x for x in screen.splitlines() if x.startswith(("┃", "│"))]
    rows = [[c.strip() for c in x.strip("┃│").split("┃" if x.startswith("┃") else "│")] for x in lines]
    heads = [r for r, x in zip(rows, lines, strict=True) if x.startswith("┃")]
    names = ["".join(parts).replace(" ", "") for parts in zip(*heads, strict=True)]
    assert header.replace(" ", "") in names, names
    body = [r for r, x in zip(rows, lines, strict=True) if x.startswith("│")]
    return {name: "".join(r[i] for r in body).replace(" ", "") for i, name in enumerate(names)}


@pytest.mark.parametrize("width", ["80", "160"])
def test_history_and_the_replace_prompt_name_the_variants_on_a_terminal(shop, width):
    from tests.terminal import Terminal

    with Store.open(shop) as store:
        store.apply_links([LinkChange("t1", V + "1")], source="auto", actor="x")
    term = Terminal("--store", str(shop), "link", "mug-red", "MUG-BLUE", env={"COLUMNS": width})
    screen = term.expect("Replace Mug / Red (MUG-RED) with Mug / Blue (MUG-BLUE)? [y/N]")
    assert "TikTok SKU t1 ('mug-red', TT Mug / Red) is linked to" in screen
    term.send("y")
    assert term.wait() == 0, term.screen
    term = Terminal("--store", str(shop), "history", env={"COLUMNS": width})
    assert term.wait() == 0
    lines = term.screen.splitlines()
    assert lines and max(len(x) for x in lines) <= int(width)
    cells = table_columns(term.screen, "TikTok SKU")
    assert cells["TikTokSKU"] == "t1mug-redt1mug-red"
    assert cells["Old"] == "1Mug/Red(MUG-RED)"
    assert cells["New"] == "2Mug/Blue(MUG-BLUE)1Mug/Red(MUG-RED)"
    if width == "160":  # room enough: each cell on one line, as written
        assert "│ t1 mug-red │ relink │ 1 Mug / Red (MUG-RED) │ 2 Mug / Blue (MUG-BLUE) │" in term.screen


@pytest.mark.parametrize("width", ["80", "160"])
def test_autolink_on_a_terminal_lists_the_rest_links_and_says_what_can_sync(shop, width):
    from tests.terminal import Terminal

    term = Terminal("--store", str(shop), "autolink", env={"COLUMNS": width})
    screen = term.expect("Link 2 SKUs? [y/N]")
    assert "Link 2 SKUs to the Shopify variant with the same SKU" in screen
    assert "  t3 'CAP': 4 (Cap / One), 5 (Cap (old) / One)" in screen
    assert "  t2 'mystery' TT Tee / S" in screen
    quoted = shlex.quote(str(shop))
    # On a terminal the picker works: the hint names it with the real id.
    assert f"Link these by hand: `ecomsend --store {quoted} link t3` searches the catalog" in screen
    assert "products" not in screen.lower() and "(s)" not in screen  # one word, and its plural
    term.send("y")
    assert term.wait() == 0, term.screen
    assert f"Linked 2 SKUs (batch 1; `ecomsend --store {quoted} unlink --batch 1` undoes it)." in term.screen
    assert f"1 blocked order can now sync: run `ecomsend --store {quoted} sync-orders`." in term.screen
    assert max(len(x) for x in term.screen.splitlines() if x.startswith(("┃", "│", "┏", "└"))) <= int(width)


def test_every_hint_of_the_other_commands_runs_when_pasted(sandbox, sb_cli, tmp_path, monkeypatch):
    """The rest of the commands (sync, orders, doctor, catalog, verify, auth, config): every
    `ecomsend …` they print, on stderr or in a table's fix column, runs as pasted with the
    user's --config (sync-orders: 0, or 3 while orders wait; doctor: 0 or 1 as it judges)."""
    monkeypatch.chdir(tmp_path)
    expected = {"sync-orders": (0, 3), "doctor": (0, 1), "verify-orders": (0, 3)}
    ran: dict[str, int] = {}

    def step(*argv: str, code: tuple[int, ...] = (0,)) -> None:
        r = sb_cli(*argv)
        assert r.exit_code in code, (argv, r.output)
        for command in hinted(r.stdout + r.stderr):
            if command in ran or "ecomsend init" in command or "auth tiktok" in command:
                continue  # init and the TikTok authorisation are interactive first-run flows
            assert str(sandbox.config_file) in command, command  # the user's --config, repeated
            name = next(a for a in shlex.split(command)[1:] if not a.startswith("-") and "/" not in a)
            result = run_hint(command, input="")
            ran[command] = result.exit_code
            assert result.exit_code in expected.get(name, (0,)), (argv, command, result.output)

    step("orders", "show", "580000000000000011", code=(1,))  # not pulled yet: `sync-orders --order …`
    step("orders")  # nothing pulled yet (or only that order)
    step("sync-orders", code=(3,))  # blocked orders: what to run next
    step("orders")
    step("orders", "--state", "blocked")
    step("orders", "show", "580000000000000011")
    step("autolink", "--yes")
    step("orders")  # ready orders: `sync-orders`
    step("sync-orders", code=(0, 3))
    step("doctor", code=(0, 1))
    step("catalog", "refresh")
    step("verify-orders", code=(0, 3))
    step("auth", "status")
    step("auth", "shopify")
    step("config", "show")
    assert len(ran) >= 5, ran
    assert any(" sync-orders" in c for c in ran) and any("list-unlinked --search" in c for c in ran), ran


def test_undoing_a_large_mixed_batch_restores_each_link_as_it_was(tmp_path):
    """A batch bigger than a name chunk (1,000) and the terminal's 200 rows, mixing new links
    (undone: unlinked), relinks of auto, manual and feed links (undone: put back with that
    source) and links changed since (kept). Undone in one set-based transaction, listed whole
    when piped and capped on a terminal, and undoing the undo gives the batch's links back."""
    from tests.conftest import without_options
    from tests.terminal import Terminal

    path = tmp_path / "store.db"
    n = 1500
    sources = ("auto", "manual", "feed")
    with Store.open(path) as store:
        store.replace_variants([variant(i, f"V-{i}", "Prod", f"T{i}") for i in range(1, 2 * n + 1)])
        store.record_order(order("o1", [sku(f"t{i:04d}", f"S-{i}") for i in range(n)]), state="blocked")
        for source in sources:  # before the batch: every third SKU unlinked, the others linked by a source
            store.apply_links([LinkChange(f"t{i:04d}", f"{V}{i + 1}") for i in range(n) if i % 4 and
                               sources[i % 3] == source], source=source, actor="x")
        before = {x.tiktok_sku_id: (x.shopify_variant_id, x.source) for x in store.links()}
        with store.transaction():  # the batch (an import): every SKU to variant n + i + 1
            batch = store.new_batch_id()
            store.apply_links([LinkChange(f"t{i:04d}", f"{V}{n + i + 1}", before.get(f"t{i:04d}", (None,))[0])
                               for i in range(n)], source="csv", actor="x", batch=batch)
        changed = {f"t{i:04d}" for i in range(0, n, 7)}  # changed since: relinked by hand
        store.apply_links([LinkChange(k, f"{V}1", f"{V}{n + int(k[1:]) + 1}") for k in sorted(changed)],
                          source="manual", actor="y")
        after_batch = {x.tiktok_sku_id: (x.shopify_variant_id, x.source) for x in store.links()}
    term = Terminal("--store", str(path), "unlink", "--batch", str(batch), "--yes", env={"COLUMNS": "200"})
    assert term.wait() == 0, term.screen
    assert f"… and {n - len(changed) - 200} more links; `ecomsend history` lists them all." in without_options(
        term.screen)
    assert f"{len(changed)} links changed since batch {batch}, kept as they are now:" in term.screen
    assert f"Undid {n - len(changed)} links of batch {batch} (as batch {batch + 1})." in term.screen
    with Store.open(path) as store:
        now = {x.tiktok_sku_id: (x.shopify_variant_id, x.source) for x in store.links()}
        history = [h for h in store.history() if h.batch_id == batch + 1]
    expected = {k: v for k, v in before.items() if k not in changed} | {k: after_batch[k] for k in changed}
    assert now == expected  # sources too: auto, manual and feed links went back as what they were
    assert sorted(h.tiktok_sku_id for h in history) == sorted(f"t{i:04d}" for i in range(n)
                                                              if f"t{i:04d}" not in changed)
    actions = {h.tiktok_sku_id: (h.action, h.old_variant_id, h.new_variant_id, h.source) for h in history}
    assert actions["t0001"] == ("relink", f"{V}{n + 2}", f"{V}2", sources[1])
    assert actions["t0004"] == ("unlink", f"{V}{n + 5}", None, "csv")
    # Undoing the undo (piped: every row listed, in SKU order) gives the batch's links back.
    r = invoke("--store", str(path), "unlink", "--batch", str(batch + 1), "--yes")
    assert r.exit_code == 0, r.output
    rows = [line.split("\t") for line in r.stderr.splitlines() if line.startswith("t")]
    assert [row[0] for row in rows] == [f"{k} S-{int(k[1:])}" for k in sorted(actions)]
    assert rows[0] == ["t0001 S-1", "2 Prod / T2 (V-2)", f"{n + 2} Prod / T{n + 2} (V-{n + 2})"]
    with Store.open(path) as store:
        assert {x.tiktok_sku_id: x.shopify_variant_id for x in store.links()} == {
            k: v for k, (v, _) in after_batch.items()}
