"""The layering holds: the engine names no protocol, the sans-IO parts know no Trio."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "trio_kaspa_peer"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _names(path: Path) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute)
    }


ENGINE = sorted((PACKAGE / "_engine").glob("*.py"))
SANS_IO = [
    *sorted((PACKAGE / "wire").glob("*.py")),
    *sorted((PACKAGE / "_sansio").glob("*.py")),
    *sorted((PACKAGE / "_v1").glob("*.py")),
    PACKAGE / "_errors.py",
    PACKAGE / "banscores.py",
    PACKAGE / "_admission.py",
]


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.name)
def test_engine_names_no_protocol(path: Path) -> None:
    imports = _imports(path)
    for forbidden in (
        "trio_kaspa_peer.wire",
        "trio_kaspa_peer._v1",
        "trio_kaspa_peer.banscores",
        "trio_kaspa_peer.protowire",
        "trio_kaspa_peer._modern",
        "trio_kaspa_peer._grpc",
        # Where the protocol is chosen: open_peer hands the engine the protocol's peer.
        "trio_kaspa_peer._protocols",
    ):
        assert not any(m == forbidden or m.startswith(forbidden + ".") for m in imports), (
            path.name,
            forbidden,
        )
    assert not any(
        m.startswith(("trio_kaspa_peer._v1peer", "trio_kaspa_peer._modernpeer")) for m in imports
    )
    messages = {name for name in _names(path) if name.startswith("Msg")}
    assert not messages, (path.name, messages)


@pytest.mark.parametrize("path", SANS_IO, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sans_io_parts_know_no_trio(path: Path) -> None:
    assert not any(m == "trio" or m.startswith("trio.") for m in _imports(path)), path


# The Trio layers above the sans-IO parts: not even a typing-only import may name them.
_ABOVE = tuple(
    f"trio_kaspa_peer.{name}"
    for name in ("_engine", "_tcp", "_serve", "_protocols", "_v1peer", "_modernpeer", "testing")
)


@pytest.mark.parametrize("path", SANS_IO, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sans_io_parts_import_nothing_above_them(path: Path) -> None:
    above = sorted(m for m in _imports(path) if m.startswith(_ABOVE))
    assert not above, (path, above)


def test_codec_and_cores_import_without_trio() -> None:
    code = (
        "import sys\n"
        "import trio_kaspa_peer.wire, trio_kaspa_peer._v1, trio_kaspa_peer._sansio\n"
        "assert 'trio' not in sys.modules, sorted(m for m in sys.modules if 'trio' == m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
