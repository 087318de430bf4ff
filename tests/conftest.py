"""Shared fixtures: the golden vectors made by the reference implementation."""

from __future__ import annotations

import functools
import gzip
import json
import os
from collections.abc import Callable
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


PROTOWIRE_VECTOR_FILES = ("protowire/v5-seed1.json", "protowire/v10-seed1.json")
"""The modern protocol's vectors: kaspad v0.12.20 (protocol 5) and rusty-kaspa v2.0.1 (10)."""


def protowire_vector_version(name: str) -> int:
    """The protocol version a protowire vector file was made for (5 or 10)."""
    return {"protowire/v5-seed1.json": 5, "protowire/v10-seed1.json": 10}[name]


def protowire_params(
    kind: str,
    select: Callable[[dict[str, Any]], bool] = lambda entry: True,
) -> list[Any]:
    """One pytest param per entry of ``kind`` in each protowire vector file: (file, index).

    The test id is ``v5-<name>`` / ``v10-<name>``; an absent file gives one param
    (index -1) whose test skips through :func:`require_vectors`.
    """
    params = []
    for name in PROTOWIRE_VECTOR_FILES:
        prefix = name.split("/")[1].split("-")[0]
        data = load_vector_file(name)
        if data is None:
            params.append(pytest.param(name, -1, id=f"{prefix}-absent"))
            continue
        for index, entry in enumerate(data[kind]):
            if select(entry):
                params.append(pytest.param(name, index, id=f"{prefix}-{entry['name']}"))
    return params
