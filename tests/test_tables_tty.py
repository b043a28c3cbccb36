"""Tables on a real pseudo-terminal at 80 and 160 columns: an id never breaks (issue #12 item 5).

Ids, GIDs, order names and SKU codes stay whole on one line; titles shorten
with "…"; when even that does not fit, the least important columns go and a
footnote names them. Variant GIDs show as their number in tables.
"""

from __future__ import annotations

from ecomsend_cli.store import LinkChange, Store
from tests.factory import order, sku, variant
from tests.terminal import Terminal

V = "gid://shopify/ProductVariant/"
VIDS = [44012345678901 + i for i in range(4)]  # Shopify's variant numbers have 14 digits today
SKU_IDS = [f"17296000000010000{i:02d}" for i in range(1, 5)]
ORDER_IDS = [f"5800000000000000{i:02d}" for i in range(1, 4)]


def make_store(path) -> None:
    with Store.open(path) as store:
        store.replace_variants([
            variant(VIDS[0], "TEE-BLK-M", "Classic Organic Cotton Crew Neck Tee", "Black / M"),
            variant(VIDS[1], "TEE-BLK-L", "Classic Organic Cotton Crew Neck Tee", "Black / L"),
            variant(VIDS[2], "MUG-TRAVEL-STEEL", "Insulated Stainless Travel Mug", "Steel"),
            variant(VIDS[3], "SCARF-WOOL-OAT", "Merino Wool Winter Scarf", "Oat"),
        ])
        skus = [sku(SKU_IDS[0], "TEE-BLK-M", "Classic Organic Cotton Crew Neck Tee for Everyday", "Black M"),
                sku(SKU_IDS[1], "TEE-BLK-L", "Classic Organic Cotton Crew Neck Tee for Everyday", "Black L"),
                sku(SKU_IDS[2], "MUG-TRAVEL-STL", "Insulated Stainless Steel Travel Mug 16oz", "Steel"),
                sku(SKU_IDS[3], "SCARF-WOOL-OAT-XL", "Merino Wool Winter Scarf Extra Long", "Oat")]
        for oid, parts in zip(ORDER_IDS, [skus[:2], skus[2:3], skus[3:]], strict=True):
            store.record_order(order(oid, parts, status="AWAITING_COLLECTION"), state="blocked",
                               reason=f"{len(parts)} unlinked SKU(s): {' '.join(s.sku_id for s in parts)}")
        store.apply_links([LinkChange(SKU_IDS[0], V + str(VIDS[1]))], source="auto", actor="operator-on-duty")
        store.apply_links([LinkChange(SKU_IDS[0], V + str(VIDS[0]), old=V + str(VIDS[1]))],
                          source="manual", actor="operator-on-duty")


def show(store_path, width: int, *args: str) -> list[str]:
    term = Terminal("--store", str(store_path), *args, env={"COLUMNS": str(width), "LINES": "100"})
    assert term.wait(30) == 0, term.screen
    lines = term.screen.replace("\r\n", "\n").split("\n")
    assert all(len(line) <= width for line in lines if "│" in line or "┃" in line), term.screen
    return lines


def assert_whole(lines: list[str], *ids: str) -> None:
    for id_ in ids:
        assert any(id_ in line for line in lines), f"{id_} is not whole on any line:\n" + "\n".join(lines)


def footnote(lines: list[str]) -> str | None:
    return next((line for line in lines if "hidden at" in line), None)


def test_list_unlinked_keeps_ids_whole_and_says_which_columns_it_hid(store_path):
    make_store(store_path)
    narrow = show(store_path, 80, "list-unlinked")
    assert_whole(narrow, *SKU_IDS[1:], "MUG-TRAVEL-STL", "SCARF-WOOL-OAT-XL")
    assert any("…" in line and SKU_IDS[2] in line for line in narrow)  # the title shortened on the id's line
    note = footnote(narrow)
    assert note and note.startswith("1 column hidden at 80 columns: SKU name;") and "--json" in note
    wide = show(store_path, 160, "list-unlinked")
    assert_whole(wide, *SKU_IDS[1:], "SKU name", "Black L")
    assert footnote(wide) is None


def test_orders_keep_order_ids_and_sku_ids_whole(store_path):
    make_store(store_path)
    narrow = show(store_path, 80, "orders")
    # SKU_IDS[0] is linked since: the live reasons name only the SKUs still blocking.
    assert_whole(narrow, *ORDER_IDS, *SKU_IDS[1:])
    assert footnote(narrow) is not None
    wide = show(store_path, 160, "orders")
    assert_whole(wide, *ORDER_IDS, *SKU_IDS[1:], "AWAITING_COLLECTION")
    assert footnote(wide) is None


def test_history_shows_variant_numbers_whole(store_path):
    make_store(store_path)
    for width in (80, 160):
        lines = show(store_path, width, "history")
        assert_whole(lines, SKU_IDS[0], str(VIDS[0]), str(VIDS[1]))
        assert not any(V in line for line in lines)  # the number stands for the GID in a table
        assert (footnote(lines) is not None) == (width == 80)


def test_csv_plan_keeps_ids_whole(store_path, tmp_path):
    make_store(store_path)
    plan = tmp_path / "plan.csv"
    plan.write_text("tiktok_sku_id,shopify_variant_id\n"
                    f"{SKU_IDS[0]},{V}{VIDS[1]}\n{SKU_IDS[2]},{V}{VIDS[2]}\n{SKU_IDS[3]},{VIDS[3]}\n")
    for width in (80, 160):
        lines = show(store_path, width, "link", "--csv", str(plan), "--dry-run")
        assert_whole(lines, SKU_IDS[0], SKU_IDS[2], SKU_IDS[3], *(str(v) for v in VIDS))
        assert not any(V in line for line in lines if "│" in line)
        assert (footnote(lines) is not None) == (width == 80)


def test_links_keep_sku_ids_and_variant_numbers_whole(store_path):
    make_store(store_path)
    with Store.open(store_path) as store:
        store.apply_links([LinkChange(SKU_IDS[2], V + str(VIDS[2]))], source="csv", actor="operator-on-duty")
    for width in (80, 160):
        lines = show(store_path, width, "links")
        assert_whole(lines, SKU_IDS[0], SKU_IDS[2], str(VIDS[0]), str(VIDS[2]))
        assert not any(V in line for line in lines if "│" in line)
        assert (footnote(lines) is not None) == (width == 80)
