"""Markdown pieces every artifact uses: a table cell that keeps its row, a latency figure."""

from __future__ import annotations


def cell(text: object) -> str:
    """`text` as one markdown table cell: pipes escaped, line breaks folded into spaces."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def ms(value: float | None) -> str:
    """A latency in milliseconds, `-` when unknown."""
    return "-" if value is None else f"{value:.1f} ms"
