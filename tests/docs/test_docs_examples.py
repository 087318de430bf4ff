"""The examples under docs/examples run, and print what the documentation says they print."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def run_example(name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_example_is_tested() -> None:
    # modern_addresses.py has its own test (tests/test_modern_example.py).
    tested = {"first_peer.py", "serving.py", "crawling.py", "modern_addresses.py"}
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_first_peer() -> None:
    out = run_example("first_peer.py")
    assert "connected to /trio-kaspa-peer:" in out
    assert "it knows ['192.0.2.10:16511']" in out


def test_serving() -> None:
    out = run_example("serving.py")
    assert re.search(r"serving on 127\.0\.0\.1 port \d+", out)
    assert "the server handed out 192.0.2.20" in out


@pytest.mark.skipif(sys.platform != "linux", reason="the simulated blackholes need Linux")
def test_crawling() -> None:
    out = run_example("crawling.py")
    assert re.search(r"^\s+53\s+reachable$", out, re.MULTILINE)
    assert re.search(r"^\s+3\s+unreachable \(refused\)$", out, re.MULTILINE)
    assert "60 nodes stored" in out
    assert "needs no network" in out
