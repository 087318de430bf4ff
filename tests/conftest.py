"""Shared fixtures: the golden vectors made by the reference implementation."""

from __future__ import annotations

import functools
import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

VECTORS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"
VECTOR_FILES = ("devnet-seed2.json", "simnet-seed1.json.gz")
#: The modern protocol's protobuf vectors, in the ``protowire/`` subdirectory.
PROTOWIRE_FILES = ("v5-seed1.json", "v10-seed1.json")


@functools.cache
def load_vector_file(name: str) -> dict[str, Any] | None:
    """The parsed vector file, or ``None`` when the vectors directory is absent.

    Under ``CI=true`` a missing vectors directory is an error, not a skip.
    """
    path = VECTORS_DIR / name
    if not path.exists():
        if os.environ.get("CI") == "true":
            raise FileNotFoundError(f"golden vectors missing under CI: {path}")
        return None
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def require_vectors(name: str) -> dict[str, Any]:
    data = load_vector_file(name)
    if data is None:
        pytest.skip(f"golden vectors not found at {VECTORS_DIR} (expected beside the project)")
    return data


def require_protowire_vectors(name: str) -> dict[str, Any]:
    """A file of ``shared/vectors/protowire/`` (``v5-seed1.json``, ``v10-seed1.json``).

    Skips without the directory, fails under ``CI=true``, as :func:`require_vectors`.
    """
    return require_vectors(f"protowire/{name}")
