"""The examples under docs/examples run, and print what the documentation says they print."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import trio_kaspa_peer

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "examples"

# Figures of the printed output that differ between runs: a line matching one of these is
# compared by its shape only.
VOLATILE = (
    re.compile(r"^ping \d+\.\d ms$"),
    re.compile(r"^report: \d+ KiB, needs no network$"),
)


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


def documented_output(introduction: str) -> list[str]:
    """The lines of the literal block that follows ``introduction`` in the tutorial."""
    text = (DOCS / "tutorial.rst").read_text(encoding="utf-8")
    start = text.index(introduction + "::\n\n") + len(introduction) + 4
    lines: list[str] = []
    for line in text[start:].splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    while lines and not lines[-1]:
        lines.pop()
    return lines


def assert_prints_as_documented(out: str, introduction: str) -> None:
    documented = documented_output(introduction)
    printed = out.rstrip("\n").splitlines()
    assert len(printed) == len(documented), (printed, documented)
    for got, said in zip(printed, documented, strict=True):
        volatile = [p for p in VOLATILE if p.match(said)]
        if volatile:
            assert volatile[0].match(got), (got, said)
        else:
            assert got == said


def test_every_example_is_tested() -> None:
    # modern_addresses.py has its own test (tests/test_modern_example.py).
    tested = {"first_peer.py", "serving.py", "crawling.py", "modern_addresses.py"}
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_first_peer() -> None:
    out = run_example("first_peer.py")
    assert f"connected to /trio-kaspa-peer:{trio_kaspa_peer.__version__}/tutorial:/" in out
    assert "it knows ['192.0.2.10:16511']" in out
    assert_prints_as_documented(out, "Run it with ``python docs/examples/first_peer.py``")


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
    assert_prints_as_documented(out, "It prints")
