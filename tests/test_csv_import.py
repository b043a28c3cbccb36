"""Bulk linking from CSV and the spreadsheet round trip (DESIGN §6), through the real CLI."""

from __future__ import annotations

import codecs
import csv
import io
import json

import pytest

from ecomsend_cli.csvlinks import COLUMNS, neutralise, unneutralise, write_csv
from ecomsend_cli.store import LinkChange, Store
from tests.conftest import fixture_path
from tests.factory import digest, history_of, links_of, order, sku, variant
from tests.terminal import Terminal

V = "gid://shopify/ProductVariant/"
# Real-looking TikTok sku_ids: 19 digits, which spreadsheets turn into 1.72959E+18.
T1, T2, T3, T4, T5, T6, T7, T8 = (str(1729592969712207012 + i) for i in range(8))


@pytest.fixture
def shop(store_path):
    """A store with a match, an ambiguous Shopify SKU, a zero-padded SKU, an ambiguous
    TikTok seller SKU, formula-like codes and one existing manual link (T7 → 106)."""
    with Store.open(store_path) as store:
        store.replace_variants([
            variant(101, "AB-100", "Mug", "Red"),
            variant(102, "DUP-1", "Shirt", "S"),
            variant(103, "dup-1 ", "Shirt copy", "S"),
            variant(104, "0042", "Zero pad", "One"),
            variant(105, "CD-200", "Plate", "Big"),
            variant(106, "EF-500", "Cup", "Small"),
            variant(107, "=SUM(A1)", "Formula", "One"),
            variant(108, "GH-900", "Bowl", "Blue"),
        ])
        skus = [
            sku(T1, "ab-100 ", "TT Mug", "Red"),
            sku(T2, "DUP-1", "TT Shirt", "S"),
            sku(T3, "42", "TT zero", "One"),
            sku(T4, "CD-200", "TT Plate", "Big"),
            sku(T5, "SHARED", "TT Hat", "Black"),
            sku(T6, "shared ", "TT Hat", "White"),
            sku(T7, "EF-500", "TT Cup", "Small"),
            sku(T8, "-5", "=cmd|' /C calc'!A0", "One"),
        ]
        store.record_order(order("o1", skus[:4]), state="blocked")
        store.record_order(order("o2", skus[4:]), state="blocked")
        store.apply_links([LinkChange(T7, V + "106")], source="manual", actor="alice")
    return store_path


def put(tmp_path, text: str | bytes, name: str = "links.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return str(path)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: line ")]


# --- importing ---------------------------------------------------------------------------


def test_import_links_by_id_and_by_sku_in_one_transaction_with_history(cli, shop, tmp_path):
    f = put(tmp_path, (
        "tiktok_sku_id,tiktok_seller_sku,shopify_variant_id,shopify_sku\n"
        f"{T1},,{V}101,\n"
        f",CD-200,,cd-200\n"          # both sides by SKU code
        f"{T3},,104,\n"               # plain variant number
    ))
    r = cli("link", "--csv", f, "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {"file", "dry_run", "rows", "new", "changed", "unchanged", "skipped",
                         "repeated", "invalid", "written", "batch_id"}
    assert data["batch_id"] == 1
    assert data["new"] == [
        {"line": 2, "tiktok_sku_id": T1, "shopify_variant_id": V + "101"},
        {"line": 3, "tiktok_sku_id": T4, "shopify_variant_id": V + "105"},
        {"line": 4, "tiktok_sku_id": T3, "shopify_variant_id": V + "104"},
    ]
    assert (data["written"], data["dry_run"], data["rows"]) == (3, False, 3)
    links = links_of(shop)
    assert links[T1] == (V + "101", "csv") and links[T4] == (V + "105", "csv")
    assert links[T3] == (V + "104", "csv") and links[T7] == (V + "106", "manual")
    new_history = [h for h in history_of(shop) if h.source == "csv"]
    assert sorted((h.tiktok_sku_id, h.action, h.actor) for h in new_history) == sorted(
        [(T1, "link", "tester"), (T4, "link", "tester"), (T3, "link", "tester")])


def test_importing_the_same_file_twice_changes_nothing(cli, shop, tmp_path):
    f = put(tmp_path, f"tiktok_sku_id,shopify_sku\n{T1},AB-100\n{T4},CD-200\n")
    assert cli("link", "--csv", f).exit_code == 0
    links, history = links_of(shop), history_of(shop)
    r = cli("link", "--csv", f, "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["new"], data["changed"], data["written"]) == ([], [], 0)
    assert [x["tiktok_sku_id"] for x in data["unchanged"]] == [T1, T4]
    assert links_of(shop) == links
    assert history_of(shop) == history


def test_rows_with_an_empty_shopify_column_are_skipped_and_counted(cli, shop, tmp_path):
    f = put(tmp_path, (
        "tiktok_sku_id,tiktok_seller_sku,shopify_variant_id,shopify_sku,product_title\n"
        f"{T1},ab-100,,AB-100,TT Mug\n"
        f"{T2},DUP-1,,,TT Shirt\n"
        f"{T3},42,, \t ,TT zero\n"       # white space only counts as empty
        ",,,,\n"                         # a blank row, as spreadsheets leave: ignored
    ))
    r = cli("link", "--csv", f)
    assert r.exit_code == 0, r.stderr
    assert "1 new, 0 changed, 0 unchanged, 2 skipped (empty Shopify column)" in r.stderr
    assert set(links_of(shop)) == {T1, T7}
    data = json.loads(cli("link", "--csv", f, "--dry-run", "--json").stdout)
    assert data["skipped"] == [
        {"line": 3, "tiktok_sku_id": T2, "tiktok_seller_sku": "DUP-1"},
        {"line": 4, "tiktok_sku_id": T3, "tiktok_seller_sku": "42"},
    ]
    assert data["rows"] == 3


def test_stdin_is_read_with_a_dash(cli, shop):
    r = cli("link", "--csv", "-", input=f"tiktok_sku_id,shopify_sku\n{T1},AB-100\n")
    assert r.exit_code == 0, r.stderr
    assert links_of(shop)[T1] == (V + "101", "csv")


# --- files as spreadsheets write them ---------------------------------------------------------


@pytest.mark.parametrize("sep", [",", ";", "\t"])
@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_separators_bom_line_endings_and_header_case_are_detected(cli, shop, tmp_path, sep, bom, newline):
    rows = [[" TikTok_SKU_ID ", "Shopify_Variant_Id", "Product_Title"],
            [T1, V + "101", "Mug, red; big"],
            [T4, "105", "Plate"]]
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator=newline).writerows(rows)
    data = (codecs.BOM_UTF8 if bom else b"") + buf.getvalue().encode()
    r = cli("link", "--csv", put(tmp_path, data), "--json")
    assert r.exit_code == 0, r.stderr
    assert [x["tiktok_sku_id"] for x in json.loads(r.stdout)["new"]] == [T1, T4]


def test_excel_file_with_sep_line_semicolons_bom_crlf_and_multiline_cells(cli, shop, tmp_path):
    # What Excel (European locale, "CSV UTF-8") writes: BOM, "sep=;", CRLF, cells with the
    # separator, quotes and line breaks quoted. Line numbers are the file's physical lines.
    text = (
        "sep=;\r\n"                                                      # line 1
        "tiktok_sku_id;shopify_sku;product_title;sku_name\r\n"           # line 2
        f'{T1};AB-100;"Mug; red, ""large""\r\nsecond line";Red\r\n'      # lines 3-4
        f"{T4};CD-200;Plate;Big\r\n"                                     # line 5
        f'{T2};NOPE;"two\r\nlines";S\r\n'                                # lines 6-7
        "999;AB-100;x;y\r\n"                                             # line 8
    )
    before = digest(shop)
    r = cli("link", "--csv", put(tmp_path, codecs.BOM_UTF8 + text.encode()))
    assert r.exit_code == 1
    errors = error_lines(r.stderr)
    assert errors[0].startswith("error: line 6: Shopify SKU 'NOPE' is not in the catalog cache")
    assert errors[1].startswith("error: line 8: unknown TikTok SKU '999'")
    assert len(errors) == 2
    assert "2 of 4 rows" in r.stderr and "nothing was written" in r.stderr
    assert digest(shop) == before
    fixed = text.replace(f"{T2};NOPE", f"{T2};").replace("999;AB-100", f"{T3};0042")
    r = cli("link", "--csv", put(tmp_path, codecs.BOM_UTF8 + fixed.encode(), "fixed.csv"), "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert [(x["line"], x["tiktok_sku_id"]) for x in data["new"]] == [(3, T1), (5, T4), (8, T3)]
    assert [x["line"] for x in data["skipped"]] == [6]


def test_google_sheets_download_with_quoted_commas_and_newlines(cli, shop, tmp_path):
    # Google Sheets: File › Download › CSV: comma, CRLF rows, no BOM, "\n" inside quoted cells.
    text = (
        "tiktok_sku_id,tiktok_seller_sku,shopify_variant_id,shopify_sku,product_title,sku_name,suggestion\r\n"
        f'{T1},ab-100 ,,AB-100,"TT Mug, red","Red\nbig",AB-100 (Mug / Red)\r\n'
        f'{T5},SHARED,{V}108,,"TT ""Hat""",Black,no match\r\n'
    )
    r = cli("link", "--csv", put(tmp_path, text), "--json")
    assert r.exit_code == 0, r.stderr
    assert [(x["line"], x["tiktok_sku_id"]) for x in json.loads(r.stdout)["new"]] == [(2, T1), (4, T5)]


def test_excel_unicode_text_utf16_tab_separated(cli, shop, tmp_path):
    text = f"tiktok_sku_id\tshopify_sku\r\n{T1}\tAB-100\r\n"
    r = cli("link", "--csv", put(tmp_path, codecs.BOM_UTF16_LE + text.encode("utf-16-le")))
    assert r.exit_code == 0, r.stderr
    assert links_of(shop)[T1] == (V + "101", "csv")


def test_rows_missing_only_trailing_context_cells_are_accepted(cli, shop, tmp_path):
    # Excel leaves out trailing empty cells on rows after the 16th.
    text = "tiktok_sku_id,shopify_sku,product_title,sku_name\n" + f"{T1},AB-100\n" + f"{T4},CD-200,Plate\n"
    r = cli("link", "--csv", put(tmp_path, text))
    assert r.exit_code == 0, r.stderr
    assert set(links_of(shop)) == {T1, T4, T7}


# --- validation: everything reported at once, nothing written -------------------------------


def test_every_kind_of_bad_row_is_reported_with_its_line_and_nothing_is_written(cli, shop, tmp_path):
    text = (
        "tiktok_sku_id,tiktok_seller_sku,shopify_variant_id,shopify_sku,product_title\n"  # 1
        f"{T1},,,AB-100,ok\n"                        # 2 valid
        "123,,,AB-100,x\n"                           # 3 unknown TikTok SKU
        ",NO-SUCH,,AB-100,x\n"                       # 4 unknown seller SKU
        ",shared,,AB-100,x\n"                        # 5 ambiguous seller SKU
        f"{T2},,,DUP-1,x\n"                          # 6 ambiguous Shopify SKU
        f"{T3},,,42,x\n"                             # 7 leading zeros lost (0042 exists, 42 does not)
        f"{T4},,{V}999,,x\n"                         # 8 unknown variant
        f"{T4},,abc,,x\n"                            # 9 not a variant id
        "1.72959E+18,,,AB-100,x\n"                   # 10 id in scientific notation
        "1729592969712200000,,,AB-100,x\n"           # 11 id rounded to 15 digits
        f"{T5},,{V}101,CD-200,x\n"                   # 12 id and SKU disagree
        f"{T6},HAT,,CD-200,x\n"                      # 13 TikTok id and seller SKU disagree
        f"{T8},,{V}105,,x\n"                         # 14 the same SKU twice,
        f"{T8},,{V}108,,x\n"                         # 15 with different variants
        f"{T4}\n"                                    # 16 too few cells
        f"{T4},,105,,x,extra\n"                      # 17 too many cells
        ",,,AB-100,x\n"                              # 18 no TikTok SKU
        f"{T4},,,1.5E+3,x\n"                         # 19 SKU in scientific notation
    )
    before = digest(shop)
    r = cli("link", "--csv", put(tmp_path, text))
    assert r.exit_code == 1
    assert r.stdout == ""
    by_line = {int(e.split(":")[1].split()[-1]): e for e in error_lines(r.stderr)}
    expected = {
        3: "unknown TikTok SKU '123'",
        4: "TikTok seller SKU 'NO-SUCH' is in no pulled order",
        5: f"TikTok seller SKU 'shared' names 2 TikTok SKUs: {T5} (TT Hat / Black), {T6}",
        6: f"Shopify SKU 'DUP-1' names 2 variants: {V}102 (Shirt / S), {V}103",
        7: "Shopify SKU '42' is not in the catalog cache, but '0042' is — a spreadsheet dropped",
        8: f"no Shopify variant {V}999 in the catalog cache",
        9: "'abc' is not a Shopify variant id",
        10: "TikTok SKU id '1.72959E+18' is damaged: a spreadsheet turned it into a number in "
            "scientific notation",
        11: "TikTok SKU id '1729592969712200000' is damaged: it looks rounded by a spreadsheet",
        12: f"shopify_variant_id {V}101 has SKU 'AB-100' but shopify_sku says 'CD-200'",
        13: f"tiktok_sku_id {T6} has seller SKU 'shared ' but tiktok_seller_sku says 'HAT'",
        14: f"TikTok SKU {T8} is on lines 14, 15 with different variants ({V}105, {V}108)",
        15: f"TikTok SKU {T8} is on lines 14, 15 with different variants",
        16: "1 cell(s), the header has 5",
        17: "6 cells, the header has 5 — a row with too many cells (a comma inside an unquoted cell?)",
        18: "no TikTok SKU",
        19: "Shopify SKU '1.5E+3' is not in the catalog cache, and a spreadsheet turned it into a number",
    }
    assert sorted(by_line) == sorted(expected)
    for line, text_ in expected.items():
        assert by_line[line].startswith(f"error: line {line}: {text_}"), by_line[line]
    assert "17 of 18 rows" in r.stderr and "--skip-invalid" in r.stderr
    assert digest(shop) == before


def test_errors_are_also_in_the_json_document(cli, shop, tmp_path):
    r = cli("link", "--csv", put(tmp_path, f"tiktok_sku_id,shopify_sku\n{T1},AB-100\n123,AB-100\n"), "--json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data["invalid"] == [{"line": 3, "error": "unknown TikTok SKU '123' — no pulled order has it; "
                                                   "see `ecomsend list-unlinked --all`"}]
    assert data["written"] == 0
    # On stderr the hint repeats the user's --store, so it can be pasted as it is.
    assert error_lines(r.stderr) == ["error: line 3: unknown TikTok SKU '123' — no pulled order has it; "
                                     f"see `ecomsend --store {shop} list-unlinked --all`"]


def test_skip_invalid_applies_the_valid_rows_and_reports_the_rest(cli, shop, tmp_path):
    f = put(tmp_path, f"tiktok_sku_id,shopify_sku\n{T1},AB-100\n123,AB-100\n{T2},DUP-1\n{T4},CD-200\n")
    r = cli("link", "--csv", f, "--skip-invalid")
    assert r.exit_code == 0, r.stderr
    assert "warning: line 3: unknown TikTok SKU '123'" in r.stderr
    assert "warning: line 4: Shopify SKU 'DUP-1' names 2 variants" in r.stderr
    assert "2 invalid rows left out" in r.stderr
    assert set(links_of(shop)) == {T1, T4, T7}


def test_a_repeated_row_with_the_same_target_is_not_an_error(cli, shop, tmp_path):
    f = put(tmp_path, f"tiktok_sku_id,shopify_variant_id\n{T1},101\n{T1},{V}101\n")
    r = cli("link", "--csv", f, "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["repeated"] == [{"line": 3, "tiktok_sku_id": T1, "first_line": 2}]
    assert data["written"] == 1


def test_id_and_sku_that_agree_are_fine_even_when_the_sku_is_ambiguous(cli, shop, tmp_path):
    f = put(tmp_path, f"tiktok_sku_id,tiktok_seller_sku,shopify_variant_id,shopify_sku\n"
                      f"{T2},dup-1,{V}103,DUP-1\n")
    r = cli("link", "--csv", f)
    assert r.exit_code == 0, r.stderr
    assert links_of(shop)[T2] == (V + "103", "csv")


# --- files that are not link CSVs ------------------------------------------------------------


def test_a_shopify_product_export_is_refused_naming_the_missing_columns(cli, shop):
    path = fixture_path("shopify_product_template.csv")
    before = digest(shop)
    r = cli("link", "--csv", str(path))
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "is not a link CSV: it has no TikTok column (tiktok_sku_id or tiktok_seller_sku) and no " \
           "Shopify column (shopify_variant_id or shopify_sku)" in lines[0]
    assert "'Handle', 'Title'" in lines[0] and "(48 columns)" in lines[0]
    assert "list-unlinked --csv" in lines[0]
    assert digest(shop) == before


def test_a_file_with_only_one_side_names_the_missing_one(cli, shop, tmp_path):
    r = cli("link", "--csv", put(tmp_path, f"tiktok_sku_id,product_title\n{T1},x\n"))
    assert r.exit_code == 1
    assert "no Shopify column (shopify_variant_id or shopify_sku)" in r.stderr
    assert "TikTok column" not in r.stderr


@pytest.mark.parametrize(("data", "says"), [
    (b"PK\x03\x04\x14\x00\x06\x00", "looks like an Excel workbook"),
    (b"tiktok_sku_id,shopify_sku\n1,\x00\x01\x02\n", "not a text file (control character U+0000 on line 2)"),
    ("tiktok_sku_id,shopify_sku\nCafé,x\n".encode("cp1252"), "not UTF-8 text (byte 0xe9 on line 2)"),
    (b"", "is empty"),
    (b"\r\n\r\n", "is empty"),
    (b"tiktok_sku_id,shopify_sku\n1,\"AB-100\n", "line 2: the CSV cannot be read here"),
    (b"tiktok_sku_id,shopify_sku,shopify_sku\n", "column shopify_sku appears twice (columns 2 and 3)"),
])
def test_unreadable_files_fail_cleanly_with_the_store_unchanged(cli, shop, tmp_path, data, says):
    before = digest(shop)
    r = cli("link", "--csv", put(tmp_path, data))
    assert r.exit_code == 1
    assert says in r.stderr
    assert r.stderr.startswith("error: ") and "Traceback" not in r.output
    assert digest(shop) == before


def test_a_missing_file_is_an_error(cli, shop, tmp_path):
    r = cli("link", "--csv", str(tmp_path / "nope.csv"))
    assert r.exit_code == 1 and "cannot read" in r.stderr


@pytest.mark.parametrize("args", [
    ["link"],
    ["link", T1, "--csv", "x.csv"],
    ["link", "--dry-run"],
])
def test_usage_errors_exit_2(cli, shop, args):
    r = cli(*args)
    assert r.exit_code == 2
    assert "--csv" in r.output


# --- plan, dry run and replacing links -----------------------------------------------------


def test_dry_run_prints_new_changed_unchanged_and_writes_nothing(cli, shop, tmp_path):
    cli("link", T1, "AB-100")
    before = digest(shop)
    f = put(tmp_path, (
        "tiktok_sku_id,shopify_sku\n"
        f"{T1},AB-100\n"       # unchanged
        f"{T7},GH-900\n"       # changed: 106 -> 108
        f"{T4},CD-200\n"       # new
        f"{T2},\n"             # skipped
    ))
    r = cli("link", "--csv", f, "--dry-run")
    assert r.exit_code == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert rows[0][:3] == ["Line", "Action", "TikTok SKU id"]
    assert [(x[0], x[1], x[2]) for x in rows[1:]] == [("2", "unchanged", T1), ("3", "changed", T7), ("4", "new", T4)]
    changed = rows[2]
    assert changed[5] == V + "108" and changed[6] == "GH-900" and changed[8] == f"{V}106 (Cup / Small)"
    assert "1 new, 1 changed, 1 unchanged, 1 skipped" in r.stderr and "Nothing was written" in r.stderr
    assert "--force" in r.stderr
    assert digest(shop) == before
    data = json.loads(cli("link", "--csv", f, "--dry-run", "--json").stdout)
    assert data["changed"] == [{"line": 3, "tiktok_sku_id": T7, "shopify_variant_id": V + "108",
                                "old_shopify_variant_id": V + "106"}]
    assert data["dry_run"] is True and data["written"] == 0
    assert digest(shop) == before


def test_replacing_links_needs_force_or_yes_without_a_terminal(cli, shop, tmp_path):
    f = put(tmp_path, f"tiktok_sku_id,shopify_sku\n{T7},GH-900\n{T4},CD-200\n")
    before = digest(shop)
    r = cli("link", "--csv", f)
    assert r.exit_code == 1
    assert "1 row would replace existing links" in r.stderr and "--force" in r.stderr
    assert digest(shop) == before
    r = cli("link", "--csv", f, "--force")
    assert r.exit_code == 0, r.stderr
    assert links_of(shop)[T7] == (V + "108", "csv")
    last = [h for h in history_of(shop) if h.tiktok_sku_id == T7][0]
    assert (last.action, last.old_variant_id, last.new_variant_id, last.source) == (
        "relink", V + "106", V + "108", "csv")
    back = put(tmp_path, f"tiktok_sku_id,shopify_sku\n{T7},EF-500\n", "back.csv")
    assert cli("link", "--csv", back, "--yes").exit_code == 0
    assert links_of(shop)[T7] == (V + "106", "csv")


@pytest.mark.slow
def test_replacing_links_asks_on_a_terminal(shop, tmp_path):
    f = put(tmp_path, f"tiktok_sku_id,shopify_sku\n{T7},GH-900\n{T4},CD-200\n")
    before = digest(shop)
    term = Terminal("--store", str(shop), "link", "--csv", f)
    screen = term.expect("Replace 1 existing link and add 1 new link? [y/N]")
    assert "GH-900" in screen and "Cup / Small" in screen
    term.send("n")
    assert term.wait() == 0
    assert "Nothing changed" in term.screen
    assert digest(shop) == before
    term = Terminal("--store", str(shop), "link", "--csv", f)
    term.expect("[y/N]")
    term.send("y")
    assert term.wait() == 0, term.screen
    assert links_of(shop)[T7] == (V + "108", "csv") and links_of(shop)[T4] == (V + "105", "csv")


# --- the round trip and formula neutralisation ------------------------------------------------


def test_round_trip_list_unlinked_fill_in_import(cli, shop, tmp_path):
    exported = cli("list-unlinked", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert list(rows[0]) == list(COLUMNS)
    fill = {T1: "AB-100", T2: "DUP-1", T4: "CD-200", T8: "GH-900"}
    for row in rows:  # the operator types Shopify SKUs (the ambiguous one by id) into the sheet
        if row["tiktok_sku_id"] == T2:
            row["shopify_variant_id"] = V + "102"
        elif row["tiktok_sku_id"] in fill:
            row["shopify_sku"] = fill[row["tiktok_sku_id"]]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    f = put(tmp_path, codecs.BOM_UTF8 + buf.getvalue().encode(), "filled.csv")
    r = cli("link", "--csv", f)
    assert r.exit_code == 0, r.stderr
    assert "4 new" in r.stderr and "3 skipped" in r.stderr  # T3, T5 and T6 left empty
    left = {x["tiktok_sku_id"] for x in json.loads(cli("list-unlinked", "--json").stdout)}
    assert left == {T3, T5, T6}
    assert links_of(shop)[T8] == (V + "108", "csv")  # its seller SKU "-5" came back as "'-5"


def test_links_export_imports_back_unchanged_including_neutralised_and_stale_links(cli, shop, tmp_path):
    cli("link", T8, "107")  # a variant whose SKU is "=SUM(A1)"; T8's seller SKU is "-5"
    cli("link", T1, "AB-100")
    with Store.open(shop) as store:  # 101 leaves the catalog: T1's link is now stale
        store.replace_variants([v for v in store.iter_variants() if v.variant_id != V + "101"])
    out = tmp_path / "links.csv"
    assert cli("links", "export", "-o", str(out)).exit_code == 0
    rows = {r["tiktok_sku_id"]: r for r in csv.DictReader(io.StringIO(out.read_text()))}
    assert rows[T8]["tiktok_seller_sku"] == "'-5" and rows[T8]["shopify_sku"] == "'=SUM(A1)"
    history = history_of(shop)
    r = cli("link", "--csv", str(out), "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert {x["tiktok_sku_id"] for x in data["unchanged"]} == {T1, T7, T8}
    assert data["written"] == 0 and data["invalid"] == []
    assert history_of(shop) == history


def test_written_cells_that_a_spreadsheet_would_run_are_neutralised():
    buf = io.StringIO()
    evil = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "'=x", "plain", "a=b"]
    write_csv(buf, [{"tiktok_sku_id": v, "product_title": v} for v in evil])
    rows = list(csv.reader(io.StringIO(buf.getvalue(), newline="")))[1:]
    cells = [r[0] for r in rows]
    assert cells == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "''=x", "plain", "a=b"]
    # Display-only columns (no import reads them) are also made inert: the CR goes.
    assert [r[4] for r in rows] == [c.replace("\r", "") if c != "'\rx" else "x" for c in cells]
    assert [unneutralise(c) for c in cells] == evil
    assert all(neutralise(c)[:1] not in "=+-@\t\r" for c in evil)
