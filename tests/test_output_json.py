"""`--json` is written by orjson, piped tables a line at a time (issue 13): the same output as before.

Scripts read these documents; the encoder changed for speed only. Piped output
is compact, on a terminal it keeps json.dumps' ``indent=2`` layout byte for
byte, and what orjson does not encode by itself (named tuples, keys that are
not strings) comes out as json.dumps wrote it.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from ecomsend_cli.output import Output, _plain, _plain_line, encode_json


class Pair(NamedTuple):
    sku: str
    count: int


DATA = {
    "rows": [Pair("A-1", 2), {"n": 1.5, "ok": True, "none": None, "empty": [], "obj": {}}],
    "text": "é \u2028 tab\t quote\" back\\ nul\x00",
    "by_count": {3: "three", 10: "ten"},
}


def test_encoded_documents_read_back_as_json_dumps_wrote_them():
    assert json.loads(encode_json(DATA)) == json.loads(json.dumps(DATA, ensure_ascii=False))


def test_indented_output_is_byte_for_byte_json_dumps_indent_2():
    data = {k: v for k, v in DATA.items() if k != "by_count"}
    assert encode_json(data, indent=True).decode() == json.dumps(data, indent=2, ensure_ascii=False)


def test_terminal_controls_are_escaped_in_every_batch_of_a_streamed_array(capsys):
    rows = [{"title": f"t{i}\x7f\x85\u202e\u2066"} for i in range(5)]
    Output().json_array(iter(rows), chunk=2)  # three batches
    out = capsys.readouterr().out
    assert json.loads(out) == rows
    assert out.count("\\u007f\\u0085\\u202e\\u2066") == 5
    assert not any(ch in out for ch in "\x7f\x85\u202e\u2066")


def test_an_empty_streamed_array_is_one_empty_document(capsys):
    Output().json_array(iter([]))
    assert capsys.readouterr().out == "[]\n"


# --- piped tables: one check per line gives what a check per cell gave ---------------------

_CELL = st.one_of(
    st.none(), st.integers(-5, 10**6),
    st.text(st.sampled_from(["a", "é", " ", "\t", "\r", "\n", "\x1b", "\x7f", "\x85", "\u202e", "\u2028",
                             "\xa0", "\x0c"]), max_size=6),
)


@given(st.lists(_CELL, min_size=1, max_size=6))
def test_a_piped_line_is_its_cells_made_plain_and_joined_by_tabs(row):
    assert _plain_line(row) == "\t".join(_plain(c) for c in row)


def test_a_piped_table_writes_every_row_once_in_order(capsys):
    rows = [[n, f"title {n}", None, "tab\there"] for n in range(2500)]  # more than one batch
    Output().table(["n", "title", "none", "text"], iter(rows))
    lines = capsys.readouterr().out.split("\n")
    assert lines[0] == "n\ttitle\tnone\ttext" and lines[-1] == ""
    assert lines[1:-1] == [f"{n}\ttitle {n}\t\ttab here" for n in range(2500)]
