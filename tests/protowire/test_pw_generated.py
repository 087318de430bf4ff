"""The committed generated code is what ``p2p.proto`` compiles to, and loads as ours."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from google.protobuf import descriptor_pool

from trio_kaspa_peer.protowire._generated import p2p_pb2

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_protowire", ROOT / "tools" / "generate_protowire.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    # Regenerate with the pinned protoc (grpcio-tools) and mypy-protobuf, and compare.
    # On failure: run `nox -s generate` (or tools/generate_protowire.py) and commit.
    tool = _tool()
    for fresh in tool.generate(tmp_path):
        committed = ROOT / fresh.relative_to(tmp_path)
        assert committed.read_bytes() == fresh.read_bytes(), f"{committed} is out of date"


def test_schema_has_its_own_names_in_the_descriptor_pool() -> None:
    # Another library's kaspa schema ("p2p.proto", package "protowire") cannot clash.
    assert p2p_pb2.DESCRIPTOR.name == "trio_kaspa_peer/protowire/_generated/p2p.proto"
    assert p2p_pb2.DESCRIPTOR.package == "trio_kaspa_peer.p2p"
    pool = descriptor_pool.Default()
    assert pool.FindMessageTypeByName("trio_kaspa_peer.p2p.KaspadMessage") is (
        p2p_pb2.KaspadMessage.DESCRIPTOR
    )
    # Shown under the module users import it from (reprs, tracebacks, pickles).
    assert p2p_pb2.KaspadMessage.__module__ == "trio_kaspa_peer.protowire"


def test_the_schema_declares_no_service() -> None:
    assert not p2p_pb2.DESCRIPTOR.services_by_name


def test_importing_the_codec_does_not_import_trio() -> None:
    code = "import sys, trio_kaspa_peer.protowire; print('trio' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"
