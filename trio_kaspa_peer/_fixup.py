"""Public names show their public module: ``trio_kaspa_peer.wire.MsgPing``, not ``..._messages``.

The idea of trio's ``fixup_module_metadata``: classes and functions are
defined in private modules and re-exported; setting their ``__module__`` to
the public module makes reprs, tracebacks, pickles and the documentation
name them as users import them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["fixup_module_metadata"]


def fixup_module_metadata(
    module_name: str, namespace: dict[str, Any], names: Iterable[str]
) -> None:
    """Set ``__module__`` of the public classes and functions in ``names`` to ``module_name``.

    Only objects defined in the private modules below ``module_name`` are
    touched (``trio_kaspa_peer.wire._tx`` for ``trio_kaspa_peer.wire``):
    re-exports from elsewhere keep theirs.  Nested classes and methods follow
    their class.
    """
    private_prefix = module_name + "._"
    seen: set[int] = set()

    def fix(obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        module = getattr(obj, "__module__", None)
        if not isinstance(module, str) or not module.startswith(private_prefix):
            return
        try:
            obj.__module__ = module_name
        except (AttributeError, TypeError):
            return
        if isinstance(obj, type):
            for value in obj.__dict__.values():
                if isinstance(value, type) or callable(value):
                    fix(value)

    for name in names:
        obj = namespace.get(name)
        if obj is not None and (isinstance(obj, type) or callable(obj)):
            fix(obj)
