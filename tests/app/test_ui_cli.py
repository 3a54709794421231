"""``posestyle app``: the streamlit command it runs and its argument checks; and the app's own
argument parsing (``-- --root DIR --store URL``)."""
from __future__ import annotations

import sys
from pathlib import Path

from typer.testing import CliRunner

from app.cli import cli
from app.cli.app_commands import APP_MAIN, streamlit_command
from app.services.limits import MAX_UPLOAD_MB
from app.ui.state import DEFAULT_ROOT, parse_app_args


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_streamlit_command_is_headless_private_and_bounded(tmp_path: Path) -> None:
    command = streamlit_command(tmp_path, 8123, "127.0.0.1", "sqlite:///x.db")
    assert command[:5] == [sys.executable, "-m", "app.ui.serve", "run", str(APP_MAIN)] and APP_MAIN.is_file()
    assert _option(command, "--server.headless") == "true"
    assert _option(command, "--server.port") == "8123"
    assert _option(command, "--browser.gatherUsageStats") == "false"
    assert _option(command, "--server.maxUploadSize") == str(MAX_UPLOAD_MB)
    assert command[command.index("--"):] == ["--", "--root", str(tmp_path), "--store", "sqlite:///x.db"]
    assert "--store" not in streamlit_command(tmp_path, 8123, "127.0.0.1", None)


def test_app_command_refuses_a_file_as_root(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = CliRunner().invoke(cli, ["app", "--root", str(not_a_folder)])
    assert result.exit_code == 2 and "--root must be a folder" in result.output
    assert "app" in CliRunner().invoke(cli, ["--help"]).output


def test_app_arguments(tmp_path: Path) -> None:
    config = parse_app_args(["--root", str(tmp_path), "--store", "postgresql+psycopg://db/x"])
    assert config.root == str(tmp_path.resolve()) and config.store_url == "postgresql+psycopg://db/x"
    default = parse_app_args([])
    assert default.root == str(Path(DEFAULT_ROOT).resolve()) and default.store_url is None
    assert parse_app_args(["--ro", "elsewhere"]).root == str(Path(DEFAULT_ROOT).resolve())   # no abbreviations


def test_app_is_read_only_unless_it_listens_on_loopback(tmp_path: Path, monkeypatch) -> None:
    import app.cli.app_commands as app_commands
    from app.services.server_paths import is_loopback

    served: list[list[str]] = []

    def fake_execve(program: str, argv: list[str], env: dict[str, str]) -> None:
        served.append(argv)

    monkeypatch.setattr(app_commands.os, "execve", fake_execve)
    for args, read_only in ((["--address", "127.0.0.1"], False), (["--address", "0.0.0.0"], True),
                            (["--address", "192.168.1.4"], True), (["--address", "::1"], False),
                            (["--read-only"], True), (["--address", "0.0.0.0", "--writable"], False)):
        result = CliRunner().invoke(cli, ["app", "--root", str(tmp_path), *args])
        assert result.exit_code == 0, result.output
        assert ("--read-only" in served[-1]) is read_only, args
        assert parse_app_args(served[-1][served[-1].index("--") + 1:]).read_only is read_only
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and not is_loopback("example.org")
