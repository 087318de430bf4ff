"""The public API: every name shows its public module, and its annotations resolve."""

from __future__ import annotations

import pickle
import typing

import pytest

import trio_kaspa_peer as tkp
from trio_kaspa_peer import protowire, wire

MODULES = [tkp, wire, protowire]


def _public(module: object) -> list[tuple[str, object]]:
    names: list[str] = module.__all__  # type: ignore[attr-defined]
    return [(name, getattr(module, name)) for name in names]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_public_classes_show_their_public_module(module: typing.Any) -> None:
    for name, obj in _public(module):
        if isinstance(obj, type) and obj.__module__.startswith("trio_kaspa_peer"):
            # A class of the package shows the public module it is exported from
            # (or another public module of the package: wire's errors derive from ours).
            assert not any(part.startswith("_") for part in obj.__module__.split(".")), name


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_type_hints_resolve(module: typing.Any) -> None:
    """The module fix-up must not break typing.get_type_hints (string annotations)."""
    for _name, obj in _public(module):
        if (isinstance(obj, type) and obj.__module__.startswith("trio_kaspa_peer")) or (
            callable(obj) and getattr(obj, "__module__", "").startswith("trio_kaspa_peer")
        ):
            typing.get_type_hints(obj)


def test_values_pickle_by_their_public_names() -> None:
    for value in (wire.MsgPing(7), protowire.PingMessage(nonce=7), wire.Hash(bytes(32))):
        assert pickle.loads(pickle.dumps(value)) == value
