"""`deliverypipeline webhook` refuses to start without a secret or a Prefect server."""

from __future__ import annotations

import argparse
import sys

import pytest

from flows.cli import webhook as cli
from flows.cli.main import CliError


def main(argv: list[str]) -> int:
    """`deliverypipeline` with only this subcommand, handling errors as `flows.cli.main` does."""
    parser = argparse.ArgumentParser(prog="deliverypipeline")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"deliverypipeline: {exc}", file=sys.stderr)
        return 2


def test_refuses_without_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DELIVERY_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert main(["webhook", "--port", "0"]) == 2
    assert "DELIVERY_WEBHOOK_SECRET is not set" in capsys.readouterr().err


def test_refuses_without_prefect_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DELIVERY_WEBHOOK_SECRET", "s3cret")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["webhook", "--port", "0"]) == 2
    assert "PREFECT_API_URL" in capsys.readouterr().err


def test_refuses_a_timeout_github_would_not_wait_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DELIVERY_WEBHOOK_SECRET", "s3cret")
    assert main(["webhook", "--api-url", "http://127.0.0.1:1/api", "--prefect-timeout", "12"]) == 2
    assert "between 0 and 10" in capsys.readouterr().err
