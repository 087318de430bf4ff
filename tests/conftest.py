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


def _with_others(directory: Path, known: tuple[str, ...]) -> tuple[str, ...]:
    """The files we know of, then every other vector file beside them (another seed, say,
    from the same generator): each is tested as the known ones are."""
    try:
        names = sorted(path.name for path in directory.iterdir() if path.is_file())
    except OSError:
        return known
    others = [name for name in names if name.endswith((".json", ".json.gz"))]
    return known + tuple(name for name in others if name not in known)


VECTOR_FILES = _with_others(VECTORS_DIR, ("devnet-seed2.json", "simnet-seed1.json.gz"))
#: The modern protocol's protobuf vectors, in the ``protowire/`` subdirectory.
PROTOWIRE_FILES = _with_others(VECTORS_DIR / "protowire", ("v5-seed1.json", "v10-seed1.json"))


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


PROTOWIRE_VECTOR_FILES = tuple(f"protowire/{name}" for name in PROTOWIRE_FILES)
"""The modern protocol's vectors: kaspad v0.12.20 (protocol 5) and rusty-kaspa v2.0.1 (10)."""


def vector_file_tag(name: str) -> str:
    """A file's short name for test ids: ``devnet``, ``v5``, ... for the files we know of,
    the whole name (without extensions) for others."""
    base = name.rsplit("/", 1)[-1]
    stem = base.split(".", 1)[0]
    if name in VECTOR_FILES[:2] or base in PROTOWIRE_FILES[:2]:
        return stem.split("-")[0]
    return stem


def protowire_vector_version(name: str) -> int:
    """The protocol version a protowire vector file was made for (5 or 10): its own
    ``protocol_version``."""
    return int(require_vectors(name)["protocol_version"])


def vector_net(name: str) -> Any:
    """The network a protocol-1 vector file's frames are for: its own ``magic``."""
    from trio_kaspa_peer import wire

    return wire.KaspaNet(int(require_vectors(name)["magic"], 16))


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
        prefix = vector_file_tag(name)
        data = load_vector_file(name)
        if data is None:
            params.append(pytest.param(name, -1, id=f"{prefix}-absent"))
            continue
        for index, entry in enumerate(data[kind]):
            if select(entry):
                params.append(pytest.param(name, index, id=f"{prefix}-{entry['name']}"))
    return params
