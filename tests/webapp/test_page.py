"""Rendering of the page and content negotiation."""

from __future__ import annotations

import json

import pytest

from webapp.page import html_body, json_body, wants_json
from webapp.state import State, VersionStarted


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("*/*", False),
        ("", False),
        ("text/html;q=0.5, application/json", True),
        ("application/json;q=0.4, text/html", False),
        ("application/json;q=0", False),
        ("application/json;q=bad", False),
    ],
)
def test_wants_json(accept: str, expected: bool) -> None:
    assert wants_json(accept) is expected


STATE = State(
    calls=3,
    starts=2,
    history=(
        VersionStarted(version="v1", at="2026-01-01T00:00:00Z", host="a"),
        VersionStarted(version="v2<b>", at="2026-01-02T00:00:00Z", host="b"),
    ),
)


def test_json_body_has_the_contract_fields_newest_start_first() -> None:
    doc = json.loads(json_body(STATE, "v2", "b").render(42))
    assert doc == {
        "calls": 42,
        "deploy_history": [
            {"version": "v2<b>", "time": "2026-01-02T00:00:00Z", "host": "b"},
            {"version": "v1", "time": "2026-01-01T00:00:00Z", "host": "a"},
        ],
        "version": "v2",
        "hostname": "b",
    }


def test_html_body_shows_all_sections_escaped() -> None:
    page = html_body(STATE, "v2&x", "b").render(42).decode()
    for heading in ("Deploy history", "Aggregated calls", "Current version", "Host name"):
        assert f"<h1>{heading}</h1>" in page
    assert '<p id="calls">42</p>' in page
    assert "v2&lt;b&gt;" in page and "<b>" not in page
    assert '<p id="version">v2&amp;x</p>' in page
