"""Regenerate ``trio_kaspa_peer/protowire/_generated/`` from ``p2p.proto``.

Runs the ``protoc`` bundled with ``grpcio-tools`` (``python -m grpc_tools.protoc``)
with the ``mypy-protobuf`` plugin, so the committed ``p2p_pb2.py`` and its
``p2p_pb2.pyi`` stubs always come from the same compiler.  The ``.proto`` is
compiled under the virtual path ``trio_kaspa_peer/protowire/_generated/p2p.proto``:
that is the file's name in protobuf's process-wide descriptor pool (unique to
this project, so another library's ``p2p.proto`` cannot clash with it) and the
module name the generated classes report.

Usage: ``python tools/generate_protowire.py [OUTPUT_ROOT]`` (default: the
project root, i.e. regenerate in place).  ``nox -s generate`` runs it; a test
regenerates into a temporary directory and compares with the committed files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO = Path("trio_kaspa_peer/protowire/p2p.proto")
VIRTUAL_DIR = "trio_kaspa_peer/protowire/_generated"
GENERATED = (f"{VIRTUAL_DIR}/p2p_pb2.py", f"{VIRTUAL_DIR}/p2p_pb2.pyi")


def _mypy_plugin() -> str:
    found = shutil.which("protoc-gen-mypy", path=os.path.dirname(sys.executable))
    found = found or shutil.which("protoc-gen-mypy")
    if found is None:
        raise SystemExit("protoc-gen-mypy not found: install the 'test' extra (mypy-protobuf)")
    return found


def generate(output_root: Path) -> list[Path]:
    """Compile the schema into ``output_root`` and return the files written."""
    output_root.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={VIRTUAL_DIR}={PROTO.parent}",
        f"--plugin=protoc-gen-mypy={_mypy_plugin()}",
        f"--python_out={output_root}",
        f"--mypy_out={output_root}",
        f"{VIRTUAL_DIR}/{PROTO.name}",
    ]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return [output_root / name for name in GENERATED]


def main(argv: list[str]) -> int:
    output_root = Path(argv[1]).resolve() if len(argv) > 1 else ROOT
    for path in generate(output_root):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
