"""Broken stores (issue 9, item 4) and private stores (item 5): one clear line, never a traceback.

Each failure is produced for real on a real store file: another process holding
a write transaction, a file-size limit that makes writes fail as a full disk
does, bytes overwritten in the file, permissions this user lacks.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ecomsend_cli.store import CREATED_KEY, LinkChange, Store
from tests.conftest import python_cmd
from tests.factory import links_of, sku, variant

V = "gid://shopify/ProductVariant/"
HAS_PROC_LOCKS = Path("/proc/locks").exists()


def one_line_error(r, *needles):
    assert r.exit_code == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and not re.search(r"sqlite3\.\w*Error", r.stderr), r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def catalog(path: Path, n: int) -> None:
    """``n`` TikTok SKUs t0…, each with a Shopify variant of the same SKU code, none linked."""
    with Store.open(path) as store:
        store.replace_variants([variant(100 + i, f"SKU-{i}") for i in range(n)])
        store.upsert_tiktok_skus([sku(f"t{i}", f"SKU-{i}") for i in range(n)])


def busy_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "busy.yaml"
    cfg.write_text("store_busy_timeout_seconds: 1\n")
    os.chmod(cfg, 0o600)
    return cfg


class Holder:
    """Another process holding a write transaction on the store until stopped."""

    def __init__(self, path: Path, *, exclusive: bool = False) -> None:
        code = (
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            # Exclusive locking mode keeps even readers out: the store cannot be opened.
            + ("c.execute('PRAGMA locking_mode=EXCLUSIVE')\n" if exclusive else "")
            + "c.execute('BEGIN IMMEDIATE')\n"
            "c.execute(\"UPDATE state SET value = value WHERE key = 'x'\")\n"
            "c.execute(\"INSERT INTO state (key, value, updated_at) VALUES ('held', '1', 'now')\")\n"
            "print('holding', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('ROLLBACK')\n"
        )
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "holding"

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


# --- another process writing -------------------------------------------------------------------


def test_a_write_while_another_process_writes_names_it_and_gives_up_after_the_key(cli, tmp_path, store_path):
    catalog(store_path, 2)
    cfg = busy_config(tmp_path)
    with Holder(store_path) as holder:
        r = cli("--config", str(cfg), "link", "t0", V + "100")
        line = one_line_error(r, f"the store {store_path} is busy", "gave up after waiting 1 s",
                              "store_busy_timeout_seconds")
        if HAS_PROC_LOCKS:
            assert f"pid {holder.proc.pid} (" in line and Path(sys.executable).name in line
    assert links_of(store_path) == {}
    assert cli("link", "t0", V + "100").exit_code == 0  # once it is gone, the same command works
    assert links_of(store_path) == {"t0": (V + "100", "manual")}


def test_opening_a_store_another_process_keeps_locked_says_who(cli, tmp_path, store_path):
    catalog(store_path, 1)
    cfg = busy_config(tmp_path)
    with Holder(store_path, exclusive=True) as holder:
        r = cli("--config", str(cfg), "links")  # a read: stopped while opening the store
        line = one_line_error(r, "is busy", "1 s")
        if HAS_PROC_LOCKS:
            assert f"pid {holder.proc.pid}" in line
    assert cli("links").exit_code == 0


def test_busy_wait_is_the_configured_key_and_is_validated(tmp_path):
    from ecomsend_cli.config import load_config
    from ecomsend_cli.errors import ConfigError

    assert load_config(env={}).store_busy_timeout_seconds == 10
    cfg = tmp_path / "c.yaml"
    cfg.write_text("store_busy_timeout_seconds: 3\n")
    assert load_config(cfg, env={}).store_busy_timeout_seconds == 3
    cfg.write_text("store_busy_timeout_seconds: soon\n")
    with pytest.raises(ConfigError, match="'store_busy_timeout_seconds' must be a whole number"):
        load_config(cfg, env={})


# --- disk full -----------------------------------------------------------------------------------


def _file_size_limit(limit: int):
    def apply() -> None:
        # Writes past the limit fail with EFBIG, as on a full disk, instead of killing the process.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_disk_full_during_an_import_is_one_line_and_leaves_the_store_whole(tmp_path, store_path):
    catalog(store_path, 1500)
    rows = "".join(f"t{i},{V}{100 + i}\n" for i in range(1500))
    csv_file = tmp_path / "links.csv"
    csv_file.write_text("tiktok_sku_id,shopify_variant_id\n" + rows)
    argv = python_cmd("--store", str(store_path), "link", "--csv", str(csv_file), "--yes")
    # The store's -wal file may not grow past 64 KB: 1,500 links need several times that.
    r = subprocess.run(argv, capture_output=True, text=True, preexec_fn=_file_size_limit(64 * 1024))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"cannot write to the store {store_path}" in lines[0] and "free some space" in lines[0], lines[0]

    conn = sqlite3.connect(store_path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("SELECT count(*) FROM links").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM link_history").fetchone() == (0,)
    conn.close()
    # Space is back: the same import goes through.
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(links_of(store_path)) == 1500


# --- a damaged file ------------------------------------------------------------------------------


def _overwrite_page_of(path: Path, name: str) -> None:
    """Overwrite the root page of table or index ``name`` with garbage, as a bad disk sector would."""
    with Store.open(path) as store:
        page_size = store.conn.execute("PRAGMA page_size").fetchone()[0]
        root = store.conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
    assert not Path(f"{path}-wal").exists()  # closed: everything is in the main file
    assert root > 1 and path.stat().st_size >= root * page_size
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xa5" * page_size)


def linked_store(path: Path, n: int = 300) -> None:
    catalog(path, n)
    with Store.open(path) as store:
        store.apply_links([LinkChange(f"t{i}", f"{V}{100 + i}") for i in range(n)], source="manual", actor="a")


def test_a_damaged_store_is_one_line_with_the_fix(cli, store_path):
    linked_store(store_path)
    _overwrite_page_of(store_path, "links")
    r = cli("links")  # the store opens; reading the links hits the damaged page
    one_line_error(r, f"the store file {store_path} is damaged", "backup", f"`ecomsend --store {store_path} doctor`")


@pytest.mark.parametrize("damaged", ["links", "idx_link_history_sku"])
def test_doctor_runs_quick_check_and_reports_the_damage(sandbox, sb_cli, damaged):
    assert sb_cli("doctor").exit_code == 0
    linked_store(sandbox.store_path, 50)
    assert "All checks passed" in sb_cli("doctor").stderr
    # An index no command of doctor reads: only quick_check can see it.
    _overwrite_page_of(sandbox.store_path, damaged)
    r = sb_cli("doctor", "--json")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    import json

    checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["store"]["ok"] is False
    assert "is damaged" in checks["store"]["detail"] and "backup" in checks["store"]["fix"]
    r = sb_cli("doctor")
    assert r.exit_code == 1 and "All checks passed" not in r.output and "damaged" in r.stdout


# --- permissions ---------------------------------------------------------------------------------


def _as_unprivileged() -> None:
    """Let file permissions apply to this child even when the tests run as root."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: gone from the child after exec
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_unprivileged(*args: str):
    try:
        r = subprocess.run(python_cmd(*args), capture_output=True, text=True, preexec_fn=_as_unprivileged)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"running as root and cannot drop CAP_DAC_OVERRIDE here: {exc}")
    from tests.conftest import Result

    return Result(r.returncode, r.stdout, r.stderr)


def test_a_store_this_user_may_not_read_is_one_line(store_path):
    catalog(store_path, 1)
    os.chmod(store_path, 0)
    r = run_unprivileged("--store", str(store_path), "links")
    one_line_error(r, f"cannot open the store {store_path}: permission denied", "chmod u+rw")


@pytest.mark.parametrize("command", [["links"], ["link", "t0", V + "100"]])
def test_a_store_in_a_read_only_folder_is_one_line(tmp_path, command):
    folder = tmp_path / "ro"
    folder.mkdir()
    store_path = folder / "store.db"
    catalog(store_path, 1)
    os.chmod(folder, 0o555)
    try:
        r = run_unprivileged("--store", str(store_path), *command)
        one_line_error(r, f"cannot use the store {store_path}: its folder {folder} is not writable",
                       "point --store elsewhere")
    finally:
        os.chmod(folder, 0o755)
    assert links_of(store_path) == {}


def test_a_read_only_store_file_is_one_line(store_path):
    catalog(store_path, 1)
    os.chmod(store_path, 0o400)
    r = run_unprivileged("--store", str(store_path), "link", "t0", V + "100")
    one_line_error(r, f"cannot write to the store {store_path}: permission denied")


# --- private stores (item 5) ---------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_store_ecomsend_created_is_made_private_again(cli, store_path):
    assert cli("links").exit_code == 0
    with Store.open(store_path) as store:
        assert store.get_state(CREATED_KEY)
        store.save_token("tiktok", {"access_token": "TTAT-SECRET-1"})
        os.chmod(store_path, 0o644)
        os.chmod(f"{store_path}-wal", 0o644)
        r = cli("links")  # opened while our own connection keeps the -wal and -shm in place
        assert r.exit_code == 0, r.stderr
        assert mode(store_path) == 0o600 and mode(Path(f"{store_path}-wal")) == 0o600
    assert "made it private again" in r.stderr and "TTAT-SECRET" not in r.output


def test_a_readable_store_ecomsend_did_not_create_warns_when_it_holds_tokens(cli, store_path):
    store_path.touch()
    os.chmod(store_path, 0o644)  # made by the operator (say, restored from a backup)
    r = cli("links")
    assert r.exit_code == 0 and "chmod" not in r.stderr  # no tokens in it yet: nothing to warn about
    with Store.open(store_path) as store:
        assert store.get_state(CREATED_KEY) is None
        store.save_token("tiktok", {"access_token": "TTAT-SECRET-2"})
    r = cli("links")
    assert r.exit_code == 0
    assert (f"warning: {store_path} holds API tokens and can be read by other users; "
            f"run: chmod 600 {store_path}") in r.stderr
    assert "TTAT-SECRET" not in r.output
    assert mode(store_path) == 0o644  # not ours to change


def test_a_refreshed_token_saved_into_a_readable_store_draws_the_warning(sandbox, sb_cli):
    sandbox.store_path.touch()
    os.chmod(sandbox.store_path, 0o644)
    sandbox.tiktok.expire_access_token()
    r = sb_cli("doctor")  # the TikTok check refreshes the token and keeps the new pair in the store
    assert r.exit_code == 0, r.output
    assert f"{sandbox.store_path} holds API tokens and can be read by other users" in r.stderr
    with Store.open(sandbox.store_path) as store:
        saved = store.load_token("tiktok")
    assert saved and saved["access_token"] and saved["access_token"] not in r.output
    assert saved["refresh_token"] not in r.output
