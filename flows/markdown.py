"""Markdown pieces every artifact uses: a table cell that keeps its row, a latency figure, a text cut
at a word, an SVG picture the Prefect UI shows inline.

The Prefect UI renders markdown table cells on one line and cuts them at the column's edge, so
artifacts keep long text (outcomes, error messages, prod's description) out of tables, in
paragraphs and lists that wrap. Pictures are `data:image/svg+xml` images: both of the UI's markdown
renderers show them inline (the React UI allows `data:image/` sources explicitly, the Vue UI passes
an image's source through), so a chart needs no server of its own.
"""

from __future__ import annotations

import base64

ELLIPSIS = "…"


def cell(text: object) -> str:
    """`text` as one markdown table cell: pipes escaped, line breaks folded into spaces."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def ms(value: float | None) -> str:
    """A latency in milliseconds, `-` when unknown."""
    return "-" if value is None else f"{value:.1f} ms"


def shorten(text: str, limit: int) -> str:
    """`text` on one line in at most `limit` characters, cut after a whole word with `…`."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: max(limit - len(ELLIPSIS), 0) + 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut else cut[:-1]
    return head.rstrip(" ,;:.-") + ELLIPSIS


def svg_image(alt: str, svg: str) -> str:
    """A markdown image of the SVG document `svg`, embedded as a base64 data URI."""
    data = base64.b64encode(svg.encode()).decode("ascii")
    label = alt.replace("[", "(").replace("]", ")")
    return f"![{label}](data:image/svg+xml;base64,{data})"
