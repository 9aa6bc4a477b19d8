"""The HAProxy executor starts its process with the plan's environment only (least privilege)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from flows.targets.local.errors import ProxyError
from flows.targets.local.haproxy import HAProxy
from flows.targets.local.plans import ProxyLayout
from tests.flows.fakes import FakeClock


def test_the_proxy_process_gets_no_variable_of_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", "6d3c1a4e-run")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-secret")
    seen = tmp_path / "environ.jsonl"
    # a stand-in binary recording the environment it was started with (its initial environ)
    binary = tmp_path / "haproxy"
    binary.write_text(
        f"#!{sys.executable}\n"
        "import json\n"
        "raw = open('/proc/self/environ', 'rb').read()\n"
        f"open({str(seen)!r}, 'a').write(json.dumps(raw.decode()) + '\\n')\n"
    )
    binary.chmod(0o755)
    layout = ProxyLayout(
        "127.0.0.1:1", "127.0.0.1:2", tmp_path / "c.cfg", tmp_path / "s.sock", tmp_path / "p.pid"
    )
    proxy = HAProxy(layout, binary=str(binary), clock=FakeClock())
    with pytest.raises(ProxyError, match="never answered"):  # the stand-in never opens a socket
        proxy.start("global\n", deadline=1)
    environs = [json.loads(line) for line in seen.read_text().splitlines()]
    assert environs == ["", ""]  # the check (`-c`) and the start: nothing at all
