"""The ``kaspa-peer`` command: a clear error without rich, and ``python -m``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trio_kaspa_peer import _cli


def test_clear_error_without_rich(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("rich", "rich.console", "rich.table"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    assert _cli.main(["demo", "--peers", "1"]) == 1
    captured = capsys.readouterr()
    assert "pip install 'trio-kaspa-peer[cli]'" in captured.err
    assert captured.out == ""


def test_python_dash_m_runs_the_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trio_kaspa_peer", "demo", "--peers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("client ") == 2
    assert done.stdout.count("server<-127.0.0.1") == 2
