"""Property tests of `link --csv`: any input ends in a plan or a clean error, never a traceback.

The parse-and-plan core runs on many generated inputs; a smaller number go
through the real CLI on a copy of a store, which must be byte-for-byte
unchanged whenever the command fails.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import shutil
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ecomsend_cli.cli import app
from ecomsend_cli.csvlinks import (
    COLUMNS,
    apply_csv_plan,
    describe_csv_plan,
    neutralise,
    plan_link_csv,
    read_link_csv,
    unneutralise,
    write_csv,
)
from ecomsend_cli.errors import InputError
from ecomsend_cli.store import LinkChange, Store
from tests.factory import order, sku, variant

V = "gid://shopify/ProductVariant/"
T = [str(1729592969712207012 + i) for i in range(8)]
SKUS = ["AB-100", "DUP-1", "0042", "CD-200", "EF-500", "=SUM(A1)", "-5", "Ünï"]
UNIQUE_SHOPIFY = {"AB-100": 101, "0042": 104, "CD-200": 105, "EF-500": 106, "=SUM(A1)": 107}
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def build(path: Path) -> None:
    with Store.open(path) as store:
        store.replace_variants([
            variant(101, "AB-100"), variant(102, "DUP-1"), variant(103, "dup-1"),
            variant(104, "0042"), variant(105, "CD-200"), variant(106, "EF-500"),
            variant(107, "=SUM(A1)"), variant(108, ""),
        ])
        skus = [sku(t, code) for t, code in zip(T, ["ab-100", "DUP-1", "42", "CD-200", "SHARED",
                                                     "shared", "EF-500", "-5"], strict=True)]
        store.record_order(order("o1", skus), state="blocked")
        store.apply_links([LinkChange(T[6], V + "106")], source="manual", actor="x")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "store.db"
    build(path)
    return path


@pytest.fixture(scope="module")
def shared_store(template):
    """One open store for the read-only planning tests (opening costs more than planning)."""
    with Store.open(template) as store:
        yield store


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- generated inputs --------------------------------------------------------------------------

# Text a CSV reader accepts: no C0 control characters other than tab, CR and LF.
TEXT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters=[chr(c) for c in range(32)
                                                                     if chr(c) not in "\t\r\n"]),
    max_size=12,
)
CELL = st.one_of(
    st.sampled_from(
        T + ["123", "1.72959E+18", "1729592969712200000", "42", "0042", "1,5E+3"]
        + [V + str(n) for n in (101, 102, 104, 999)] + ["101", "abc", "105.0", ""]
        + SKUS + ["shared", " SHARED\t", "'=SUM(A1)", "'-5", "'", '"', "\r\n", ";", ","]
    ),
    TEXT,
)
HEADER = st.lists(
    st.one_of(
        st.sampled_from(list(COLUMNS)).map(lambda c: c),
        st.sampled_from(list(COLUMNS)).map(lambda c: f" {c.upper()} "),
        TEXT,
    ),
    min_size=1, max_size=7,
)


@st.composite
def csv_shaped(draw) -> bytes:
    """Header and rows in one of the shapes spreadsheets write, or hand-made and broken."""
    header = draw(HEADER)
    # One flat list cut into rows of varying width: nested lists cost hypothesis far more.
    cells = draw(st.lists(CELL, max_size=30))
    cuts = draw(st.lists(st.integers(0, len(cells)), max_size=6))
    bounds = [0, *sorted(cuts), len(cells)]
    rows = [cells[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    sep = draw(st.sampled_from([",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if draw(st.booleans()):
        buf = io.StringIO()
        csv.writer(buf, delimiter=sep, lineterminator=newline).writerows([header, *rows])
        text = buf.getvalue()
    else:  # joined by hand: quotes and separators inside cells break the structure
        text = newline.join(sep.join(r) for r in [header, *rows])
    if draw(st.booleans()):
        text = "sep=" + sep + newline + text
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-16"])))
    if draw(st.booleans()) and not data.startswith(codecs.BOM_UTF16_LE):
        data = codecs.BOM_UTF8 + data
    return data


INPUT = st.one_of(st.binary(max_size=300), csv_shaped())


def check_plan_accounts_for_every_row(plan) -> None:
    lines = [p.line for p in (*plan.new, *plan.changed, *plan.unchanged)]
    lines += [r.line for r in plan.skipped] + [r[0] for r in plan.repeated]
    lines += sorted({p.line for p in plan.problems})
    assert len(lines) == len(set(lines)) == plan.data_rows
    known_skus = set(T)
    for p in (*plan.new, *plan.changed):
        assert p.tiktok_sku_id in known_skus
        assert p.shopify_variant_id in plan.variants  # only cached variants are ever linked
    assert all(p.line > 0 and p.message for p in plan.problems)


# --- the core ------------------------------------------------------------------------------------


@settings(max_examples=120, **SETTINGS)
@given(data=INPUT)
def test_any_input_gives_a_plan_or_a_clean_error(shared_store, data):
    try:
        plan = plan_link_csv(shared_store, read_link_csv(data, name="in.csv"))
    except InputError as exc:
        assert str(exc) and "\n" not in exc.message
        return
    check_plan_accounts_for_every_row(plan)


@st.composite
def valid_file(draw) -> tuple[bytes, dict[str, str]]:
    """A file in which every row is valid, written as a spreadsheet might, and what it asks for."""
    chosen = draw(st.lists(st.sampled_from([0, 1, 2, 3, 6, 7]), unique=True, max_size=6))
    targets = draw(st.lists(st.sampled_from(sorted(UNIQUE_SHOPIFY)), min_size=len(chosen),
                            max_size=len(chosen)))
    rows, want = [], {}
    for i, code in zip(chosen, targets, strict=True):
        by_id = draw(st.booleans())
        vid = UNIQUE_SHOPIFY[code]
        cell_id = draw(st.sampled_from([V + str(vid), str(vid), f" {vid} "])) if by_id else ""
        rows.append({"tiktok_sku_id": T[i], "shopify_variant_id": cell_id,
                     "shopify_sku": "" if by_id else code, "product_title": draw(TEXT)})
        want[T[i]] = V + str(vid)
    buf = io.StringIO()
    write_csv(buf, rows)  # neutralises "=SUM(A1)" and "-5": the import must undo it
    text = buf.getvalue()
    sep = draw(st.sampled_from([",", ";", "\t"]))
    if sep != ",":
        rewritten = io.StringIO()
        csv.writer(rewritten, delimiter=sep, lineterminator="\r\n").writerows(
            csv.reader(io.StringIO(text, newline="")))
        text = rewritten.getvalue()
    return codecs.BOM_UTF8 + text.encode(), want


@settings(max_examples=40, **SETTINGS)
@given(case=valid_file())
def test_a_valid_file_applies_exactly_and_a_second_import_changes_nothing(template, case):
    data, want = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store.db"
        shutil.copy(template, path)
        with Store.open(path) as store:
            before = {x.tiktok_sku_id: x.shopify_variant_id for x in store.links()}
            plan = plan_link_csv(store, read_link_csv(data))
            assert plan.problems == []
            apply_csv_plan(store, plan, actor="prop")
            after = {x.tiktok_sku_id: x.shopify_variant_id for x in store.links()}
            assert after == {**before, **want}
            history = len(store.history())
            again = plan_link_csv(store, read_link_csv(data))
            assert again.new == again.changed == [] and len(again.unchanged) == len(want)
            assert apply_csv_plan(store, again, actor="prop") == 0
            assert len(store.history()) == history



@settings(max_examples=80, **SETTINGS)
@given(data=st.one_of(INPUT, valid_file().map(lambda case: case[0])))
def test_a_plan_read_with_its_details_is_the_same_plan_with_what_describe_reads(shared_store, data):
    # `link --csv --dry-run` piped reads the table's details with the check (one pass
    # over each table); it must decide exactly as the plain check and show what
    # describe_csv_plan would have read afterwards.
    try:
        plain = plan_link_csv(shared_store, read_link_csv(data, name="in.csv"))
    except InputError:
        return
    detailed = plan_link_csv(shared_store, read_link_csv(data, name="in.csv"), details=True)
    for part in ("data_rows", "new", "changed", "unchanged", "skipped", "repeated", "problems"):
        assert getattr(detailed, part) == getattr(plain, part), part
    shown = [*plain.new, *plain.changed, *plain.unchanged]
    describe_csv_plan(shared_store, plain, shown)
    for p in shown:
        assert detailed.skus[p.tiktok_sku_id] == plain.skus[p.tiktok_sku_id]
        assert detailed.variants.get(p.shopify_variant_id) == plain.variants.get(p.shopify_variant_id)


@settings(max_examples=200, deadline=None)
@given(cell=st.text())
def test_unneutralise_undoes_neutralise(cell):
    assert unneutralise(neutralise(cell)) == cell
    assert neutralise(cell)[:1] not in ("=", "+", "-", "@", "\t", "\r")


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.tuples(TEXT, TEXT, TEXT, TEXT, TEXT), min_size=1, max_size=6))
def test_what_write_csv_writes_read_link_csv_reads_back(cells):
    rows = [dict(zip(COLUMNS, c, strict=False)) for c in cells]
    buf = io.StringIO()
    write_csv(buf, rows)
    parsed = read_link_csv(buf.getvalue().encode())
    expected = [tuple(x.strip() for x in c[:4]) for c in cells if any(x.strip() for x in c)]
    assert [tuple(r[1:]) for r in parsed.rows] == expected
    assert parsed.problems == []


# --- the CLI ----------------------------------------------------------------------------------------


@settings(max_examples=30, **SETTINGS)
@given(data=INPUT, flags=st.sampled_from([[], ["--force"], ["--dry-run"], ["--json"],
                                           ["--skip-invalid", "--yes"], ["--dry-run", "--json"]]))
def test_the_cli_ends_in_success_or_a_clean_error_leaving_the_store_unchanged(template, data, flags):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store.db"
        shutil.copy(template, path)
        source = Path(folder) / "in.csv"
        source.write_bytes(data)
        before = digest(path)
        result = CliRunner().invoke(app, ["--store", str(path), "link", "--csv", str(source), *flags],
                                    catch_exceptions=False)
        assert result.exit_code in (0, 1), result.output
        if result.exit_code == 1:
            assert digest(path) == before
            lines = result.stderr.splitlines()
            assert lines and lines[-1].startswith("error: ")
            assert all(line.startswith("error: ") for line in lines)
        if "--dry-run" in flags:
            assert digest(path) == before


def test_printable_noise_is_never_taken_for_a_link_file():
    # A quick sanity anchor for the generators above: plain prose is refused by its header.
    noise = (string.ascii_letters + " ,;\n") * 3
    with pytest.raises(InputError, match="not a link CSV"):
        read_link_csv(noise.encode())
