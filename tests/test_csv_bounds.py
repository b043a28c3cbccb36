"""`link --csv` reads bounded input: regular files, stdin and pipes; a row of at most 1 MB.

Each subprocess runs with its address space capped, so that a reader that
does grow (the bug these tests guard against) fails fast with MemoryError
instead of taking the machine's memory.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import tempfile
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecomsend_cli import csvlinks
from ecomsend_cli.csvlinks import MAX_ROW_CHARS, _LineSource, _RowTooLong, read_link_csv
from ecomsend_cli.errors import InputError
from ecomsend_cli.store import Store
from tests.conftest import python_cmd
from tests.factory import digest, links_of, order, sku, variant

V = "gid://shopify/ProductVariant/"
HEADER = "tiktok_sku_id,shopify_variant_id\n"
TOO_LONG = "row is longer than 1 MB"


def _cap_memory() -> None:
    limit = 1 << 30  # 1 GB of address space: plenty for the CLI, far below what a leak reaches
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run(store_path, *args: str, stdin=subprocess.DEVNULL) -> tuple[int, str, float]:
    """Exit code, stderr and peak RSS (MB, from wait4) of `ecomsend --store S link --csv ...`."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(python_cmd("--store", str(store_path), "link", "--csv", *args),
                                stdin=stdin, stdout=subprocess.DEVNULL, stderr=err,
                                preexec_fn=_cap_memory)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return proc.returncode, err.read().decode(), usage.ru_maxrss / 1024


@pytest.fixture
def shop(store_path):
    with Store.open(store_path) as store:
        store.replace_variants([variant(101, "AB-100", "Mug", "Red")])
        store.record_order(order("o1", [sku("t1", "AB-100", "TT Mug", "Red")]), state="blocked")
    return store_path


def test_devices_directories_and_sockets_are_refused_and_pipes_accepted(shop, tmp_path):
    before = digest(shop)
    code, err, _ = run(shop, "/dev/zero")
    assert code == 1
    assert err == ("error: cannot read /dev/zero: it is a character device, not a CSV file — "
                   "give a CSV file, a pipe, or - to read stdin\n")
    code, err, _ = run(shop, str(tmp_path))
    assert code == 1 and f"cannot read {tmp_path}: it is a directory" in err
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        code, err, _ = run(shop, str(tmp_path / "sock"))
    assert code == 1 and "it is a socket" in err
    assert digest(shop) == before
    # A named pipe is read like a file.
    fifo = tmp_path / "links.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w") as fh:
            fh.write(f"{HEADER}t1,{V}101\n")

    writer = threading.Thread(target=feed)
    writer.start()
    code, err, _ = run(shop, str(fifo))
    writer.join()
    assert code == 0, err
    assert links_of(shop) == {"t1": (V + "101", "csv")}


def test_endless_stdin_stops_at_the_row_bound(shop):
    before = digest(shop)
    with open("/dev/zero", "rb") as zero:  # stdin is the device itself
        code, err, _ = run(shop, "-", stdin=zero)
    assert code == 1, err
    assert err.startswith(f"error: line 1: {TOO_LONG} (1,048,576 characters)")
    assert "Traceback" not in err
    # A real pipe: cat /dev/zero | ecomsend link --csv -
    cat = subprocess.Popen(["cat", "/dev/zero"], stdout=subprocess.PIPE)
    try:
        code, err, _ = run(shop, "-", stdin=cat.stdout)
    finally:
        cat.stdout.close()
        cat.kill()
        cat.wait()
    assert code == 1 and err.startswith(f"error: line 1: {TOO_LONG}"), err
    assert digest(shop) == before


@pytest.mark.parametrize("flags", [[], ["--skip-invalid", "--yes"]])
def test_a_long_row_refuses_the_file_naming_its_line(cli, shop, tmp_path, flags):
    # The file is refused whole, with --skip-invalid too: past an over-long row the reader
    # cannot know where the next row starts (the row may be a quoted cell left open).
    path = tmp_path / "long.csv"
    path.write_text(f"{HEADER}t1,{V}101\n\nt1,{'x' * 5_000_000}\nt1,{V}101\n", encoding="utf-8")
    before = digest(shop)
    r = cli("link", "--csv", str(path), *flags)
    assert r.exit_code == 1
    assert r.stderr.startswith(f"error: line 4: {TOO_LONG}")
    assert digest(shop) == before


def test_a_row_is_bounded_across_its_lines_and_cells_up_to_the_bound_are_read(cli, shop, tmp_path):
    # A quote left open on line 2 makes every later line part of that row.
    path = tmp_path / "open-quote.csv"
    path.write_text(HEADER + 't1,"' + "abc\n" * 400_000, encoding="utf-8")
    r = cli("link", "--csv", str(path))
    assert r.exit_code == 1 and r.stderr.startswith(f"error: line 2: {TOO_LONG}"), r.stderr
    # A cell longer than the csv module's own 128 KiB limit, inside the row bound, is read.
    cell = "y" * (MAX_ROW_CHARS - 100)
    parsed = read_link_csv(f"tiktok_sku_id,shopify_sku,note\nt1,AB-100,{cell}\n".encode())
    assert [r.tiktok_sku_id for r in parsed.rows] == ["t1"]


def test_peak_memory_does_not_grow_with_the_length_of_a_row(shop, tmp_path):
    small = tmp_path / "small.csv"
    small.write_text(f"{HEADER}t1,{'x' * (2 * MAX_ROW_CHARS)}\n", encoding="utf-8")
    big = tmp_path / "big.csv"
    with open(big, "w", encoding="utf-8") as fh:
        fh.write(HEADER + "t1,")
        chunk = "x" * (1 << 20)
        for _ in range(64):  # a 64 MB row
            fh.write(chunk)
        fh.write("\n")
    code, err, baseline = run(shop, str(small))
    assert code == 1 and TOO_LONG in err
    code, err, peak = run(shop, str(big))
    assert code == 1 and "line 2: " + TOO_LONG in err
    # Reading the row whole would cost at least its 64 MB (the old reader took ~3x that).
    assert peak < baseline + 16, (baseline, peak)


class _Endless:
    """A binary stream of zero bytes that never ends."""

    def read(self, size: int = -1) -> bytes:
        assert size >= 0, "the reader asked for everything at once"
        return bytes(size)

    read1 = read


def test_read_link_csv_reads_a_stream_a_row_at_a_time():
    with pytest.raises(InputError, match=f"line 1: {TOO_LONG}"):
        read_link_csv(_Endless(), name="endless")


# --- the chunked line reader gives the lines readline gives ----------------------------

_PIECES = ["a", "bc", ",", '"', "\r", "\n", "\r\n", "\x0c", "\u2028", "\x85", "é", "\x01", "x" * 40]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40), st.integers(1, 9))
def test_lines_read_a_chunk_at_a_time_are_the_lines_readline_reads(pieces, chunk):
    """Any text, any chunk size: the same lines (CRLF split across chunks is one ending;
    FF, U+2028 and NEL stay inside a line), the same count, the same error at the same line."""
    text = "header\n" + "".join(pieces)

    def outcome(lines_of) -> tuple:
        source = _LineSource(io.BytesIO(text.encode()), "t.csv")
        source.first_line()
        got: list[str] = []
        try:
            for line in lines_of(source):
                got.append(line)
                source.new_row()
        except (_RowTooLong, InputError) as exc:
            return got, source.line, type(exc).__name__, str(exc)
        return got, source.line

    def one_at_a_time(source):
        while line := source.readline():
            yield line

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csvlinks, "_CHUNK_CHARS", chunk)
        patch.setattr(csvlinks, "MAX_ROW_CHARS", 30)  # a line of "x" * 40 passes the bound
        assert outcome(iter) == outcome(one_at_a_time)
