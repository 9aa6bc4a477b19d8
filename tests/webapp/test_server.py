"""``python -m webapp``: start-up errors are one clear line and a non-zero exit; it serves on PORT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.webapp.servers import WebappProcess, run_module
from webapp.errors import SettingsError
from webapp.server import listen_address

pytestmark = pytest.mark.slow  # starts webapp processes and waits on them


def assert_one_clear_line(result_stderr: str, *parts: str) -> None:
    lines = [line for line in result_stderr.splitlines() if line.strip()]
    assert "Traceback" not in result_stderr
    assert len(lines) == 1, result_stderr
    assert lines[0].startswith("webapp: cannot start: ")
    for part in parts:
        assert part in lines[0], lines[0]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[store]\nkind = "cassandra"\npath = "/x"\n', "[store] kind"),
        ("[store\nkind=", "not valid TOML"),
        ('[store]\nkind = "mongodb"\nuri = "mongodb://"\n', "[store] uri"),
        ('[store]\nkind = "mongodb"\nuri = "postgres://h/db"\n', "[store] uri"),
    ],
)
def test_bad_config_file_ends_start_up_with_one_line(tmp_path: Path, text: str, key: str) -> None:
    conf = tmp_path / "delivery.toml"
    conf.write_text(text)
    result = run_module({"DELIVERY_CONF": str(conf), "PORT": "0"})
    assert result.returncode == 2
    assert_one_clear_line(result.stderr, str(conf), key)


def test_unreadable_config_file(tmp_path: Path) -> None:
    result = run_module({"DELIVERY_CONF": str(tmp_path / "missing.toml")})
    assert result.returncode == 2
    assert_one_clear_line(result.stderr, f"DELIVERY_CONF={tmp_path / 'missing.toml'}", "cannot read")


def test_unusable_sqlite_path_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    conf = tmp_path / "delivery.toml"
    conf.write_text(f'[store]\nkind = "sqlite"\npath = "{tmp_path}/file/j.sqlite3"\n')
    result = run_module({"DELIVERY_CONF": str(conf)})
    assert result.returncode == 2
    assert_one_clear_line(result.stderr, f"{conf}: [store] path")


def test_unusable_data_dir_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = run_module({"DELIVERY_DATA_DIR": str(tmp_path / "file")})
    assert result.returncode == 2
    assert_one_clear_line(result.stderr, f"DELIVERY_DATA_DIR={tmp_path / 'file'}")


def test_bad_port_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="PORT=http: must be a port number"):
        listen_address({"PORT": "http"})
    assert listen_address({}) == ("0.0.0.0", 8080)
    assert listen_address({"HOST": "127.0.0.1", "PORT": "9000"}) == ("127.0.0.1", 9000)


def test_second_process_on_one_leveldb_directory_is_refused(tmp_path: Path) -> None:
    server = WebappProcess({"DELIVERY_DATA_DIR": str(tmp_path)})
    try:
        result = run_module({"DELIVERY_DATA_DIR": str(tmp_path), "PORT": "0"})
        assert result.returncode == 2
        assert_one_clear_line(result.stderr, "in use by another process")
        assert server.call() == 1  # the first one is unharmed
    finally:
        server.stop()


def test_serves_on_port_and_records_its_start(tmp_path: Path) -> None:
    conf = tmp_path / "delivery.toml"
    conf.write_text(f'[store]\nkind = "sqlite"\npath = "{tmp_path}/j.sqlite3"\nsnapshot_every = 5\n')
    server = WebappProcess({"DELIVERY_CONF": str(conf)})
    try:
        status, body = server.get("/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
        assert [server.call() for _ in range(3)] == [1, 2, 3]
        status, page = server.get("/", accept="text/html")
        assert status == 200 and b'<p id="calls">4</p>' in page
    finally:
        err = server.stop()
    assert "journaled 4 calls" in err
