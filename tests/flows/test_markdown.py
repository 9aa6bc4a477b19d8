"""Markdown pieces: cells, figures, texts cut at a word, inline SVG pictures."""

from __future__ import annotations

import base64

from flows.markdown import cell, ms, shorten, svg_image


def test_cell_keeps_its_row() -> None:
    assert cell("a | b\nc") == "a \\| b c"
    assert ms(None) == "-" and ms(3.14159) == "3.1 ms"


def test_shorten_cuts_after_a_whole_word() -> None:
    assert shorten("short enough", 20) == "short enough"
    assert shorten("deploying v2 to node-1 failed badly", 24) == "deploying v2 to node-1…"
    assert shorten("a  b\n c", 10) == "a b c"
    assert shorten("unbreakableword", 6) == "unbre…"


def test_svg_image_is_a_data_uri_the_ui_shows_inline() -> None:
    picture = svg_image("chart [ms]", "<svg/>")
    assert picture.startswith("![chart (ms)](data:image/svg+xml;base64,")
    assert base64.b64decode(picture.split(",", 1)[1].rstrip(")")) == b"<svg/>"
