"""The command line's status tables: columns as wide as their widest cell, no trailing blanks."""

from __future__ import annotations

from flows.cli.tables import table_lines


def test_columns_are_padded_to_their_widest_cell_and_lines_end_without_blanks() -> None:
    assert table_lines(("NODE", "VERSION"), [("node-10", "v1"), ("n", "")]) == [
        "NODE     VERSION",
        "node-10  v1",
        "n",
    ]
