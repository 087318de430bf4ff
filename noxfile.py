"""Developer sessions: ``nox -s tests versions lint typecheck docs bench generate fuzz``."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=["3.11", "3.12", "3.13", "3.14"])
def versions(session: nox.Session) -> None:
    """The test suite under each Python the classifiers name (a missing one is skipped)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """``ruff check`` and ``ruff format --check``."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """``mypy --strict`` over the package, the tests and the benchmarks."""
    session.install("-e", ".[test]", "mypy")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx documentation into docs/_build/html (warnings are errors)."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks and print their figures."""
    session.install("-e", ".[test]")
    session.run("python", "bench/wire_bench.py", *session.posargs)
    session.run("python", "bench/peer_bench.py", *session.posargs)
    session.run("python", "bench/crawl_bench.py", *session.posargs)
    session.run("python", "bench/grpc_bench.py", *session.posargs)
    session.run("python", "bench/protowire_bench.py", *session.posargs)
    session.run("python", "bench/protobuf_choice.py", *session.posargs)
    session.run("python", "bench/hostile_bench.py", *session.posargs)
    session.run("python", "bench/hostile_bench.py", "--stall")


@nox.session
def generate(session: nox.Session) -> None:
    """Regenerate trio_kaspa_peer/protowire/_generated/ from p2p.proto (protoc + mypy stubs)."""
    session.install("-e", ".[test]")
    session.run("python", "tools/generate_protowire.py")


@nox.session
def verifytypes(session: nox.Session) -> None:
    """Type completeness of the public API: ``pyright --verifytypes`` on an installed copy."""
    session.install(".", "pyright[nodejs]")
    session.run("pyright", "--verifytypes", "trio_kaspa_peer", "--ignoreexternal")


@nox.session
def fuzz(session: nox.Session) -> None:
    """Fuzz for long: protocol 1 with well-formed frames (``TRIO_KASPA_FUZZ_EXAMPLES`` per
    test, 20,000 by default; what it finds is kept in tests/hostile/fuzz-corpus, commit
    it), then the modern protocol's properties -- garbage, random HTTP/2 frames, random
    payload bodies, the conversation cut anywhere, protobuf-shaped bytes the parsed-size
    walk must count whenever the runtime parses them (``MODERN_EXAMPLES`` per test,
    5,000)."""
    session.install("-e", ".[test]")
    examples = os.environ.get("TRIO_KASPA_FUZZ_EXAMPLES", "20000")
    session.run(
        "pytest",
        "tests/hostile/test_fuzz_frames.py",
        "--hypothesis-show-statistics",
        *session.posargs,
        env={"TRIO_KASPA_FUZZ_EXAMPLES": examples},
    )
    session.run(
        "pytest",
        "tests/_modern/test_modern_properties.py",
        "tests/protowire/test_pw_footprint.py",
        *session.posargs,
        env={"MODERN_EXAMPLES": os.environ.get("MODERN_EXAMPLES", "5000")},
    )
